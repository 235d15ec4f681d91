"""The command-line plumbing that sample.py, score.py and tf_serving_client.py share:
one error type for the user's mistakes, argparse types, and one line per error.
"""

from __future__ import annotations

import argparse
import math
import sys


class SampleError(Exception):
    """A problem the user can fix; reported as one line."""



def whole_number(low: int, high: float = math.inf):
    """An argparse `type`: an int in [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            bound = f"between {low} and {high}" if high < math.inf else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}")
        return value
    return parse



def positive_number(text: str) -> float:
    """An argparse `type`: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number above 0")
    return value



class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one `SampleError` line instead of a usage dump."""

    def error(self, message):
        raise SampleError(f"{message} (see --help)")



def run_script(main, prog: str, exit_codes: dict[type, int]) -> None:
    """Runs `main(sys.argv[1:])`, printing its result; an error of a type in `exit_codes`
    becomes one stderr line and that exit code (for this file and the TF Serving client)."""
    try:
        print(main(sys.argv[1:]))
    except tuple(exit_codes) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(next(code for kind, code in exit_codes.items() if isinstance(error, kind)))
