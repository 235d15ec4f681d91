"""Specification of keras_vae/run/layout.py: the run record is written once and read back
the same, and a directory that is not a finished run is explained, not guessed at."""

from __future__ import annotations

import json
import os
import types

import pytest

from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.run.cli import RunFailure, UsageError
from keras_vae.run.layout import (
    RUN_CONFIG,
    checkpoint_path,
    read_run_config,
    read_summary,
    write_run_config,
)


def test_the_run_record_reads_back_equal_to_what_was_written(tmp_path):
    config = TrainConfig(model=ModelConfig(latent_dim=3, prior="vamp"), out=str(tmp_path),
                         epochs=7, kl_warmup_epochs=2)
    write_run_config(config)
    assert read_run_config(str(tmp_path)) == config


def test_a_moved_run_reads_as_where_it_is_now(tmp_path):
    """Commands write into the run (pictures, evaluation, memory-mapped data): a run moved
    or recorded relative to another directory must not send them elsewhere."""
    write_run_config(TrainConfig(out=str(tmp_path / "before")))
    os.rename(tmp_path / "before", tmp_path / "after")
    assert read_run_config(str(tmp_path / "after")).out == str(tmp_path / "after")


def test_a_record_from_another_version_is_one_clear_failure(tmp_path):
    stored = {**TrainConfig(out=str(tmp_path)).to_dict(), "future_setting": 1}
    (tmp_path / RUN_CONFIG).write_text(json.dumps(stored))
    with pytest.raises(RunFailure, match="written by another version"):
        read_run_config(str(tmp_path))
    (tmp_path / RUN_CONFIG).write_text("{not json")
    with pytest.raises(RunFailure, match="cannot read"):
        read_run_config(str(tmp_path))


def test_a_missing_checkpoint_says_whether_training_ever_started(tmp_path):
    with pytest.raises(UsageError, match="pass a run directory written by"):
        checkpoint_path(str(tmp_path))
    write_run_config(TrainConfig(out=str(tmp_path)))
    with pytest.raises(UsageError, match="its training never completed an epoch"):
        checkpoint_path(str(tmp_path))
    (tmp_path / "best.keras").write_bytes(b"")
    assert checkpoint_path(str(tmp_path)) == os.path.join(str(tmp_path), "best.keras")


def test_a_run_without_summary_reads_as_empty_and_a_damaged_one_fails(tmp_path):
    assert read_summary(str(tmp_path)) == {}
    (tmp_path / "summary.json").write_text("[1,")
    with pytest.raises(RunFailure, match="fix or remove it"):
        read_summary(str(tmp_path))


@pytest.mark.parametrize("loads", [True, False])
def test_keras_warnings_while_loading_show_only_if_the_checkpoint_loads(tmp_path, monkeypatch,
                                                                       recwarn, loads):
    """A file Keras cannot load gets the one-line failure alone, not the warnings its
    attempt printed first ("Skipping nested container …"); a model that loads keeps
    them, and the optimizer-state warning, by design of best.keras, is never shown."""
    import warnings

    import keras

    from keras_vae.run.layout import load_checkpoint

    (tmp_path / "best.keras").write_bytes(b"a checkpoint")

    def load_model(path):
        warnings.warn("Skipping nested container at 'decoder'", UserWarning, stacklevel=1)
        warnings.warn("Skipping variable loading for optimizer 'adam'", UserWarning,
                      stacklevel=1)
        if not loads:
            raise ValueError("kernel shape mismatch")
        return the_model

    the_model = types.SimpleNamespace(compiled=True,  # a float32 model, as trained
                                      dtype_policy=types.SimpleNamespace(name="float32"))
    monkeypatch.setattr(keras.models, "load_model", load_model)
    if loads:
        assert load_checkpoint(str(tmp_path)) is the_model
    else:
        with pytest.raises(RunFailure, match="damaged or from another version"):
            load_checkpoint(str(tmp_path))
    shown = [str(warning.message) for warning in recwarn]
    assert shown == (["Skipping nested container at 'decoder'"] if loads else [])
