"""How every command talks to its user: flags, one-line errors, exit codes.

A user mistake (bad flag, missing file) or an environment problem (dataset not prepared,
offline) must end in one line on stderr saying what was wrong and what to do — not a
traceback and not argparse's two-line usage dump. Commands raise `UsageError` (exit 2) or
`RunFailure` (exit 1); `run_command` turns them into that line. `--debug` shows the
traceback for developers.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence

from keras_vae.run.machine import prefer_wide_vectors


class UsageError(Exception):
    """The command was called wrongly: a bad value, an unknown name, a missing path."""

    exit_code = 2


class RunFailure(Exception):
    """The command was called rightly but could not do its work (offline, corrupt file…)."""

    exit_code = 1


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag raises `UsageError` instead of printing usage and exiting;
    every command also gets `--debug` (tracebacks and TensorFlow's own log lines)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true",
                          help="show Python tracebacks and TensorFlow's own log lines")

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def run_command(main: Callable[[list[str]], object], prog: str,
                argv: Sequence[str] | None = None) -> int:
    """Runs `main(argv)` and maps project errors to one stderr line and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        main(args)
    except (UsageError, RunFailure) as error:
        if "--debug" in args:
            raise
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return 0


def load_tensorflow(debug: bool = False) -> None:
    """Imports TensorFlow without its C++ start-up lines (unless `debug`).

    TensorFlow's native libraries print 6-30 lines on stderr as they load and first run —
    among them "failed call to cuInit: ... CUDA error" on any machine without a GPU, which
    reads as a failure. TF_CPP_MIN_LOG_LEVEL=3 hides the ones logged once absl logging has
    started; the ones printed while the libraries load come before that, so stderr's file
    descriptor points at /dev/null for the import alone. Python errors are unaffected.
    TensorFlow's own Python logger is kept to errors too. TensorFlow Datasets warns
    through absl's Python logger about its folders ("Variant
    folder … has no dataset_info.json"); what matters of that reaches the user as the
    command's own one-line error, so its warnings are kept for `--debug` too. XLA is
    asked for 512-bit vectors where the CPU has them (`prefer_wide_vectors`).
    """
    prefer_wide_vectors()
    if debug or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("absl").setLevel(logging.ERROR)
    with native_logs_hidden():
        import tensorflow
    # TensorFlow's Python warnings (a tf.function retraced) speak of its internals; a
    # command's user acts on the command's own lines.
    tensorflow.get_logger().setLevel(logging.ERROR)


@contextlib.contextmanager
def native_logs_hidden():
    """Points stderr's file descriptor at /dev/null for the block when TensorFlow's C++
    logging is off (TF_CPP_MIN_LOG_LEVEL=3, as `load_tensorflow` sets it without --debug):
    for native libraries that print while loading, before any log level applies (LiteRT's
    "Created TensorFlow Lite XNNPACK delegate")."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        yield
        return
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def number(kind: type, minimum: float, *, exclusive: bool = False) -> Callable[[str], float]:
    """An argparse `type`: a finite `kind` (int or float) ≥ minimum (> minimum if exclusive)."""
    noun = "a whole number" if kind is int else "a number"
    bound = f"above {minimum}" if exclusive else f"at least {minimum}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < minimum or (exclusive and value == minimum):
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}")
        return value

    return parse


positive_int = number(int, 1)
non_negative_int = number(int, 0)
positive_float = number(float, 0, exclusive=True)
non_negative_float = number(float, 0)


def int_list(text: str) -> tuple[int, ...]:
    """'512,256' → (512, 256); every entry a positive integer."""
    try:
        return tuple(positive_int(part.strip()) for part in text.split(","))
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of positive widths ({error})") from None


def size_pair(text: str) -> tuple[int, int]:
    """'64,48' → (64, 48): an image's height and width in pixels; '64' → (64, 64), a
    square, as one number is read for a size."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{text!r} is not HEIGHT,WIDTH or one SIZE for a "
                                         f"square, e.g. 64,48 or 64")
    height, width = sizes if len(sizes) == 2 else sizes * 2
    if min(height, width) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: height and width must be at least 1")
    return height, width
