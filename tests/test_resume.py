"""Specification of keras_vae/resume.py and keras_vae/run_lock.py: what a training may do
with a run directory that already holds something."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from keras_vae import resume
from keras_vae.cli import UsageError
from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.run_lock import RunLock


def _config(tmp_path, **changes) -> TrainConfig:
    return dataclasses.replace(TrainConfig(dataset="binarized_mnist", out=str(tmp_path / "run")),
                               **changes)


def _prepared(config, **flags) -> int:
    resume.create(config.out)
    return resume.prepare(config, **flags)


def _finish(config) -> None:
    with open(os.path.join(config.out, "summary.json"), "w") as f:
        f.write("{}")


def test_a_new_directory_is_created_and_records_its_settings(tmp_path):
    config = _config(tmp_path)
    assert _prepared(config) == 0
    with open(os.path.join(config.out, "config.json")) as f:
        assert json.load(f) == config.to_dict()


def test_a_finished_run_is_refused_without_resume_or_overwrite(tmp_path):
    config = _config(tmp_path)
    _prepared(config)
    _finish(config)
    with pytest.raises(UsageError, match="holds a finished run; pass --resume"):
        _prepared(config)
    assert _prepared(config, resume=True) == 0


def test_overwrite_removes_only_the_run_files_and_says_so(tmp_path, capsys):
    config = _config(tmp_path)
    _prepared(config)
    _finish(config)
    os.makedirs(os.path.join(config.out, "export", "vae_decoder", "1"))
    keep = os.path.join(config.out, "my_notes.txt")
    open(keep, "w").close()
    _prepared(config, overwrite=True)
    assert sorted(os.listdir(config.out)) == ["config.json", "my_notes.txt"]
    assert "removed the previous run's export, summary.json, config.json" in (
        capsys.readouterr().out)


def test_resuming_with_other_model_settings_is_refused(tmp_path):
    _prepared(_config(tmp_path))
    other = _config(tmp_path, model=ModelConfig(latent_dim=8))
    with pytest.raises(UsageError, match="trained with other settings \\(model"):
        _prepared(other)
    _prepared(_config(tmp_path, epochs=50))  # more epochs is a resume, not a conflict


def test_history_is_trimmed_to_the_epochs_the_backup_holds(tmp_path):
    run_dir = str(tmp_path)
    with open(os.path.join(run_dir, "metrics.csv"), "w") as f:
        f.write("epoch,loss,val_loss\n0,3.0,2.5\n1,2.0,1.5\n2,1.0,9.0\n")
    os.makedirs(os.path.join(run_dir, "backup"))
    with open(os.path.join(run_dir, "backup", "training_metadata.json"), "w") as f:
        json.dump({"epoch": 2, "batch": 0}, f)
    assert resume.completed_epochs(run_dir) == 2
    resume.trim_history(run_dir, 2)
    history = resume.read_history(run_dir)
    assert [row["epoch"] for row in history] == [0, 1]
    assert resume.best_validation(history) == 1.5


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
