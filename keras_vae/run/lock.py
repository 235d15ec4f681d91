"""One training per run directory: a lock file holding the owner's process id.

Two trainings writing the same checkpoints, CSV and exports would corrupt each other. The
lock is `RUN_DIR/.lock` with the owner's PID; a lock whose process no longer exists (a
crash, a power loss) is stale and is taken over.
"""

from __future__ import annotations

import os

from keras_vae.run.cli import UsageError

LOCK = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_owner(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip() or "0") or None
    except (OSError, ValueError):
        return None


def live_owner(run_dir: str) -> int | None:
    """The PID of another live process holding RUN_DIR's lock, or None."""
    owner = _read_owner(os.path.join(run_dir, LOCK))
    return owner if owner is not None and owner != os.getpid() and _alive(owner) else None


class RunLock:
    """Context manager: holds RUN_DIR/.lock for this process, or refuses clearly."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, LOCK)

    def __enter__(self) -> RunLock:
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = live_owner(os.path.dirname(self.path))
                if owner is not None:
                    raise UsageError(
                        f"{os.path.dirname(self.path)} is in use by training process {owner}; "
                        f"wait for it to finish or choose another --out") from None
                os.remove(self.path)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self

    def __exit__(self, *exc) -> None:
        if _read_owner(self.path) == os.getpid():
            os.remove(self.path)
