"""Specification of keras_vae/run/lock.py: one training per run directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from keras_vae.run.cli import UsageError
from keras_vae.run.lock import LOCK, RunLock, live_owner


def test_a_second_process_cannot_take_a_held_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with open(tmp_path / ".lock", "w") as f:
            f.write(str(holder.pid))
        with pytest.raises(UsageError, match=f"in use by training process {holder.pid}"):
            RunLock(str(tmp_path)).__enter__()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(str(tmp_path)):  # the holder is gone: the lock is stale and taken over
        assert open(tmp_path / ".lock").read() == str(os.getpid())
    assert not (tmp_path / ".lock").exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (tmp_path / LOCK).write_text(gone.stdout.strip())
    assert live_owner(str(tmp_path)) is None
    with RunLock(str(tmp_path)):
        assert (tmp_path / LOCK).read_text() == str(os.getpid())
    assert not (tmp_path / LOCK).exists()
