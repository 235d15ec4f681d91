"""Specification of keras_vae/run/resume.py and keras_vae/run/lock.py: what a training may do
with a run directory that already holds something."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.run import resume
from keras_vae.run.cli import UsageError
from keras_vae.run.layout import write_run_config


def _config(tmp_path, **changes) -> TrainConfig:
    return dataclasses.replace(TrainConfig(dataset="binarized_mnist", out=str(tmp_path / "run")),
                               **changes)


def _prepared(config, **flags) -> int:
    """What training does before and after its data loads: check, then record."""
    resume.create(config.out)
    epochs = resume.prepare(config, **flags)
    write_run_config(config)
    return epochs


def _finish(config) -> None:
    with open(os.path.join(config.out, "summary.json"), "w") as f:
        f.write("{}")


def test_a_new_directory_is_created_and_checking_it_writes_nothing(tmp_path):
    config = _config(tmp_path)
    assert resume.create(config.out) is True and resume.create(config.out) is False
    assert resume.prepare(config) == 0
    assert os.listdir(config.out) == []
    write_run_config(config)
    with open(os.path.join(config.out, "config.json")) as f:
        assert json.load(f) == config.to_dict()


def test_a_finished_run_is_refused_without_resume_or_overwrite(tmp_path):
    config = _config(tmp_path)
    _prepared(config)
    _finish(config)
    with pytest.raises(UsageError, match="holds a finished run; pass --resume"):
        _prepared(config)
    with pytest.raises(UsageError, match="is finished and kept no resume state"):
        _prepared(config, resume=True)
    os.makedirs(os.path.join(config.out, "backup"))  # trained with --keep-backup
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
    _prepared(_config(tmp_path, model=ModelConfig(latent_dim=20)))
    other = _config(tmp_path, model=ModelConfig(latent_dim=8))
    with pytest.raises(UsageError, match="trained with other settings: latent_dim 20 "
                                         "\\(now 8\\);"):
        resume.prepare(other)  # before the data load: the settings the flags decide
    _prepared(_config(tmp_path, epochs=50))  # more epochs is a resume, not a conflict


def test_flags_are_checked_before_the_data_load_on_all_but_what_the_data_fill_in(tmp_path):
    """The stored record was completed by the data; the flags' record has no image shape,
    likelihood or label names yet. Only a real difference is refused at that point."""
    stored = _config(tmp_path, model=ModelConfig(image_shape=(32, 32, 3), likelihood="logistic",
                                                 latent_dim=20, mixture_components=5,
                                                 label_names=("a", "b")))
    _prepared(stored)
    from_flags = _config(tmp_path)
    assert from_flags.model.image_shape != stored.model.image_shape
    assert from_flags.model.latent_dim is None  # no --latent-dim: the pixels decide
    resume.check_same_settings(from_flags, before_data=True)  # passes: only data fields differ
    with pytest.raises(UsageError, match="trained with other settings"):
        resume.check_same_settings(from_flags)  # the full check, after the data load
    other = _config(tmp_path, model=ModelConfig(latent_dim=8))
    with pytest.raises(UsageError, match="trained with other settings: latent_dim 20 "
                                         "\\(now 8\\);"):
        resume.check_same_settings(other, before_data=True)
    spatial = str(tmp_path / "spatial")  # its batch size a default the image size settled
    _prepared(_config(tmp_path, out=spatial, batch_size=64))
    resume.check_same_settings(_config(tmp_path, out=spatial), before_data=True)
    with pytest.raises(UsageError, match="batch_size 64 \\(now 32\\)"):
        resume.check_same_settings(_config(tmp_path, out=spatial, batch_size=32),
                                   before_data=True)


def test_history_is_trimmed_to_the_epochs_the_backup_holds(tmp_path):
    run_dir = str(tmp_path)
    with open(os.path.join(run_dir, "metrics.csv"), "w") as f:
        f.write("epoch,loss,val_loss\n1,3.0,2.5\n2,2.0,1.5\n3,1.0,9.0\n")
    os.makedirs(os.path.join(run_dir, "backup"))
    with open(os.path.join(run_dir, "backup", "training_metadata.json"), "w") as f:
        json.dump({"epoch": 2, "batch": 0}, f)
    assert resume.completed_epochs(run_dir) == 2
    resume.trim_history(run_dir, 2)
    history = resume.read_history(run_dir)
    assert [row["epoch"] for row in history] == [1, 2]
    assert resume.best_validation(history) == 1.5
