"""Write-then-rename, so a crash never leaves a truncated file under its real name.

Readers of a run directory (a resumed run, TF Serving polling an export base, a person)
see either the previous complete file or the new complete file, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary sibling path; renames it onto `path` if the block succeeds.

    Works for files and for directories (such as a SavedModel) written at the yielded path.
    On failure the temporary is removed and `path` is left as it was.
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    stem, suffix = os.path.splitext(os.path.basename(path))
    # The suffix stays last: writers such as Keras check the extension of what they write.
    tmp = os.path.join(parent, f".{stem}.tmp-{os.getpid()}{suffix}")
    _remove(tmp)
    try:
        yield tmp
        if os.path.isdir(tmp) and os.path.isdir(path):
            # A directory cannot be renamed over a non-empty one: move the old aside first.
            old = f"{tmp}.old"
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    finally:
        _remove(tmp)


def write_json(path: str, value) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)
