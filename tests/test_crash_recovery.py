"""A training process killed (SIGKILL) or interrupted (SIGINT) loses nothing: rerunning the
same command ends with every epoch once in metrics.csv and complete artifacts."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

EPOCHS = 4
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _command(run_dir: str) -> list[str]:
    return [sys.executable, "-m", "tests.train_in_subprocess", "--dataset", "binarized_mnist",
            "--epochs", str(EPOCHS), "--max-examples", "2000", "--steps-per-execution", "1",
            "--no-jit", "--no-export", "--verbose", "0", "--out", run_dir]


def _start(run_dir: str) -> subprocess.Popen:
    # SIGINT back to its default in the child: pytest started in the background by a
    # non-interactive shell inherits it ignored, and Python then never raises
    # KeyboardInterrupt.
    return subprocess.Popen(_command(run_dir), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _run_to_completion(run_dir: str) -> subprocess.CompletedProcess:
    """The training command, run in the foreground; it must succeed."""
    result = subprocess.run(_command(run_dir), cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _wait_for_saved_epochs(run_dir: str, process: subprocess.Popen, epochs: int) -> None:
    metadata = os.path.join(run_dir, "backup", "training_metadata.json")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            with open(metadata) as f:
                if json.load(f)["epoch"] >= epochs:
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    pytest.fail("training did not save an epoch in time")


def _metrics(run_dir: str) -> list[dict]:
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def _epochs_in_csv(run_dir: str) -> list[int]:
    return [int(row["epoch"]) for row in _metrics(run_dir)]


def _assert_complete(run_dir: str) -> None:
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["epochs_completed"] == EPOCHS
    assert _epochs_in_csv(run_dir) == list(range(1, EPOCHS + 1))
    for path in summary["artifacts"].values():
        assert os.path.exists(os.path.join(run_dir, path)), path
    assert not os.path.exists(os.path.join(run_dir, ".lock"))


def test_sigkill_mid_training_then_rerun_resumes_and_completes(binarized_mnist_source,
                                                               tmp_path):
    run_dir = str(tmp_path / "run")
    process = _start(run_dir)
    _wait_for_saved_epochs(run_dir, process, 2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not os.path.exists(os.path.join(run_dir, "summary.json"))
    assert os.path.exists(os.path.join(run_dir, ".lock"))  # stale: its owner is dead

    assert "resuming" in _run_to_completion(run_dir).stdout
    _assert_complete(run_dir)

    # The resumed epochs are those of a run that was never killed: weights, optimizer,
    # ε stream and the per-epoch example order all continue where they stopped.
    uninterrupted = str(tmp_path / "uninterrupted")
    _run_to_completion(uninterrupted)
    for metric in ("loss", "kl", "val_loss"):
        np.testing.assert_allclose([float(r[metric]) for r in _metrics(run_dir)],
                                   [float(r[metric]) for r in _metrics(uninterrupted)],
                                   rtol=1e-5, err_msg=metric)


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_exits_non_zero(binarized_mnist_source,
                                                                      tmp_path):
    run_dir = str(tmp_path / "run")
    process = _start(run_dir)
    _wait_for_saved_epochs(run_dir, process, 1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    last_line = stderr.strip().splitlines()[-1]
    assert "interrupted;" in last_line and "rerun the same command to resume" in last_line
    assert "Traceback" not in stderr
    assert not os.path.exists(os.path.join(run_dir, ".lock"))
    # The epochs the line names are the backup's, which a rerun resumes from (as the
    # SIGKILL test above shows, to the same numbers as a run never stopped).
    with open(os.path.join(run_dir, "backup", "training_metadata.json")) as f:
        saved = json.load(f)["epoch"]
    assert saved >= 1 and f"interrupted; {saved} completed epoch(s) are saved" in last_line
    assert _epochs_in_csv(run_dir)[:saved] == list(range(1, saved + 1))
