"""One training per run directory: a lock file holding the owner's process id.

Two trainings writing the same checkpoints, CSV and exports would corrupt each other. The
lock is `RUN_DIR/.lock` with the owner's PID; a lock whose process no longer exists (a
crash, a power loss) is stale and is taken over.
"""

from __future__ import annotations

import os

from keras_vae.cli import UsageError

LOCK = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """Context manager: holds RUN_DIR/.lock for this process, or refuses clearly."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, LOCK)

    def __enter__(self) -> RunLock:
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and owner != os.getpid() and _alive(owner):
                    raise UsageError(
                        f"{os.path.dirname(self.path)} is in use by training process {owner}; "
                        f"wait for it to finish or choose another --out") from None
                os.remove(self.path)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self

    def __exit__(self, *exc) -> None:
        if self._owner() == os.getpid():
            os.remove(self.path)

    def _owner(self) -> int | None:
        try:
            with open(self.path) as f:
                return int(f.read().strip() or "0") or None
        except (OSError, ValueError):
            return None
