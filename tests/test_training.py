"""Specification of keras_vae/run/training.py: the run's procedure, resumed runs, the
architectures, and what a failed start leaves behind."""

from __future__ import annotations

import csv
import json
import math
import os

import pytest

from keras_vae.config import TrainConfig
from keras_vae.run import training
from keras_vae.run.cli import run_command
from keras_vae.run.prior_fit import start_pseudo_inputs as training_start
from keras_vae.run.schedules import learning_rate, resumed_from
from keras_vae.train import main

TINY_RUN = ["--dataset", "binarized_mnist", "--max-examples", "600", "--hidden-dims", "64",
            "--latent-dim", "4", "--batch-size", "100", "--no-jit", "--verbose", "0"]


def _rows(run_dir: str) -> list[dict]:
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _summary(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "summary.json")) as f:
        return json.load(f)


def test_cosine_schedule_decays_from_the_learning_rate_to_zero_over_the_run():
    config = TrainConfig(learning_rate=1e-3, epochs=10, lr_schedule="cosine")
    schedule = learning_rate(config, steps_per_epoch=50)
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(250)) == pytest.approx(5e-4, rel=1e-4)
    assert float(schedule(500)) == pytest.approx(0.0, abs=1e-9)
    assert learning_rate(TrainConfig(learning_rate=2e-3), 50) == 2e-3


def test_a_resumed_run_ramps_from_where_its_schedule_stopped_to_the_new_one():
    """A finished 24-epoch cosine run resumed with --epochs 40: the rate starts where the
    first schedule ended (0), rises linearly over one epoch to the 40-epoch schedule,
    then follows it; a schedule already below the previous rate is left as it is."""
    import keras

    previous = TrainConfig(learning_rate=1e-3, epochs=24, lr_schedule="cosine")
    history = [{"epoch": e, "skipped_updates": 1.0 if e == 3 else 0.0} for e in range(1, 25)]
    step, rate = resumed_from(previous, history, steps_per_epoch=50)
    assert step == 24 * 50 - 1 and rate == pytest.approx(0.0, abs=1e-8)
    config = TrainConfig(learning_rate=1e-3, epochs=40, lr_schedule="cosine")
    ramped, plain = learning_rate(config, 50, (step, rate)), learning_rate(config, 50)
    assert float(ramped(step)) == pytest.approx(rate, abs=1e-9)
    assert float(ramped(step + 25)) == pytest.approx(0.5 * float(plain(step + 25)), rel=1e-5)
    for later in (step + 50, step + 400):
        assert float(ramped(later)) == pytest.approx(float(plain(later)), rel=1e-6)
    copied = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(ramped))
    assert float(copied(step + 25)) == pytest.approx(float(ramped(step + 25)), rel=1e-6)
    below = learning_rate(config, 50, (step, 1e-3))  # after a crash: already lower
    assert float(below(step + 10)) == pytest.approx(float(plain(step + 10)), rel=1e-6)
    # A constant stays a number after a crash (Adam then keeps its rate variable, which
    # the backup holds), and a schedule stays itself.
    assert learning_rate(TrainConfig(learning_rate=2e-3), 50, (step, 2e-3)) == 2e-3
    assert type(below) is type(plain)
    # Interrupted within the first resumed epoch: the record is the new one already, but
    # the backup and history are the old run's, whose last rate says where it stopped.
    history[-1]["learning_rate"] = 4e-6
    assert resumed_from(config, history, 50) == (step, 4e-6)
    constant = learning_rate(TrainConfig(learning_rate=2e-3), 50, (step, 0.0))
    assert float(constant(step + 10)) == pytest.approx(2e-3 * 10 / 50, rel=1e-5)


def test_weight_decay_shrinks_kernels_alone_by_learning_rate_times_decay():
    """--weight-decay is AdamW's decoupled decay: a step with zero gradients (no Adam
    update) multiplies every kernel by 1 − lr·decay and leaves biases and the VampPrior's
    pseudo-inputs as they were; without it, nothing moves."""
    import numpy as np

    from keras_vae.config import ModelConfig
    from keras_vae.run.training import build_model

    model = ModelConfig(latent_dim=(4, 2), hidden_dims=(16,), prior="vamp", pseudo_inputs=3)
    for decay, kernel_factor in ((0.5, 1 - 0.1 * 0.5), (0.0, 1.0)):
        config = TrainConfig(model=model, learning_rate=0.1, weight_decay=decay)
        vae = build_model(config.for_data((8, 8, 1), "binary"))
        for variable in vae.trainable_variables:
            variable.assign(np.ones(variable.shape, "float32"))
        vae.optimizer.apply_gradients([(np.zeros(v.shape, "float32"), v)
                                       for v in vae.trainable_variables])
        after = {v.path: np.asarray(v) for v in vae.trainable_variables}
        kernels = [path for path in after if path.endswith("/kernel")]
        assert len(kernels) >= 6 and "pseudo_inputs/logits" in after
        for path, values in after.items():
            expected = kernel_factor if path in kernels else 1.0
            assert np.allclose(values, expected, atol=1e-7), (path, decay)


@pytest.mark.slow
def test_resume_trains_a_finished_run_on_continuing_warmup_and_cosine_schedule(
        binarized_mnist_source, tmp_path, capsys, monkeypatch):
    """And a VampPrior's pseudo-inputs start at training images once: the resumed run
    takes them from its backup."""
    run_dir = str(tmp_path / "run")
    flags = [*TINY_RUN, "--kl-warmup-epochs", "3", "--lr-schedule", "cosine",
             "--learning-rate", "0.002", "--prior", "vamp", "--pseudo-inputs", "4",
             "--no-export", "--keep-backup", "--out", run_dir]
    starts = []
    monkeypatch.setattr(training, "start_pseudo_inputs",
                        lambda *args: starts.append(training_start(*args)))
    assert run_command(main, "keras_vae.train", [*flags, "--epochs", "2"]) == 0
    assert len(starts) == 1
    capsys.readouterr()
    assert run_command(main, "keras_vae.train", [*flags, "--epochs", "4", "--resume"]) == 0
    assert len(starts) == 1
    assert ("the learning rate ramps from 0, where the run stopped, to the schedule's "
            "0.001 over the first resumed epoch") in capsys.readouterr().out
    rows = _rows(run_dir)
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3, 4]  # each epoch once
    assert [row["kl_weight"] for row in rows] == pytest.approx([1 / 3, 2 / 3, 1, 1])
    # Cosine over 2 epochs, then, resumed with --epochs 4, over 4 from the restored step,
    # ramping up within the first resumed epoch from the 0 the first schedule ended at.
    expected = [1.0, 0.5, 0.0, 0.5 * (1 + math.cos(0.75 * math.pi))]
    assert [row["learning_rate"] / 0.002 for row in rows] == pytest.approx(expected, rel=1e-5)
    summary = _summary(run_dir)
    assert summary["epochs_completed"] == 4
    assert summary["best_epoch"] == 1 + min(range(4), key=lambda e: rows[e]["val_loss"])


@pytest.mark.slow
def test_a_resume_whose_optimizer_state_cannot_load_is_refused_and_loses_nothing(
        binarized_mnist_source, tmp_path, capsys):
    """A constant-rate run resumed under a cosine schedule: Adam keeps a constant as a
    variable and a schedule not, so Keras would skip the backup's optimizer state with a
    warning and train on from step 0. The command refuses in one line instead."""
    run_dir = str(tmp_path / "run")
    flags = [*TINY_RUN, "--no-export", "--keep-backup", "--out", run_dir]
    assert run_command(main, "keras_vae.train", [*flags, "--epochs", "2"]) == 0
    capsys.readouterr()
    assert run_command(main, "keras_vae.train", [*flags, "--epochs", "3", "--resume",
                                                 "--lr-schedule", "cosine"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another kind of learning rate" in err
    assert [int(row["epoch"]) for row in _rows(run_dir)] == [1, 2]
    # The run's record is its own again, so the same command without the change resumes.
    with open(os.path.join(run_dir, "config.json")) as f:
        record = json.load(f)
    assert record["lr_schedule"] == "constant" and record["epochs"] == 2


@pytest.mark.slow
def test_fewer_training_examples_than_a_batch_train_as_one_batch(binarized_mnist_source,
                                                                 tmp_path, capsys):
    """A folder of 100 photos trains with the default batch of 128 rather than being
    refused: each step is all of them, and the strategy line says so."""
    run_dir = str(tmp_path / "run")
    flags = ["--dataset", "binarized_mnist", "--max-examples", "100", "--hidden-dims", "64",
             "--latent-dim", "4", "--epochs", "3", "--no-jit", "--verbose", "0",
             "--no-export", "--out", run_dir]
    assert run_command(main, "keras_vae.train", flags) == 0
    assert ("global batch 128, more than the 100 training examples: each step trains on all "
            "of them") in capsys.readouterr().out
    losses = [row["loss"] for row in _rows(run_dir)]
    assert len(losses) == 3 and losses[2] < losses[0]  # three steps that learned
    assert _summary(run_dir)["epochs_completed"] == 3


def test_a_run_that_cannot_load_its_data_leaves_no_directory(offline, empty_data_dir,
                                                             tmp_path, capsys):
    run_dir = tmp_path / "never"
    assert run_command(main, "keras_vae.train", ["--dataset", "mnist", "--data-dir",
                                                 empty_data_dir, "--out", str(run_dir)]) == 1
    assert "is not prepared" in capsys.readouterr().err
    assert not run_dir.exists()


def test_a_run_directory_made_beforehand_is_kept_but_gets_no_settings(offline, empty_data_dir,
                                                                      tmp_path):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    assert run_command(main, "keras_vae.train", ["--dataset", "mnist", "--data-dir",
                                                 empty_data_dir, "--out", str(run_dir)]) == 1
    assert run_dir.is_dir() and os.listdir(run_dir) == []


def test_the_recorded_config_is_the_summary_s_source(trained_run):
    from keras_vae.run.layout import read_run_config

    config = read_run_config(trained_run)
    assert isinstance(config, TrainConfig) and config.out == trained_run
    assert config.to_dict() == _summary(trained_run)["config"]


def test_the_first_fit_creates_no_variable_while_tracing():
    """The optimizer's slots are made before the training step is traced: a traced
    function that creates variables is traced twice by TensorFlow, which doubled the
    first epoch's tracing of every model (a spatial model's: 19 s instead of 8)."""
    import numpy as np
    import tensorflow as tf

    from keras_vae.config import ModelConfig
    from keras_vae.run.training import build_model

    config = TrainConfig(dataset="npz:x", epochs=1, batch_size=8, model=ModelConfig(
        latent_dim=(3, 2), hidden_dims=(16,))).for_data((8, 8, 1), "binary")
    vae = build_model(config)
    created_while_tracing = []

    def creator(next_creator, **kwargs):
        created_while_tracing.append(kwargs.get("name")) if tf.inside_function() else None
        return next_creator(**kwargs)

    images = (np.random.default_rng(0).random((16, 8, 8, 1)) < 0.5).astype("float32")
    with tf.variable_creator_scope(creator):
        vae.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=1, verbose=0)
    assert vae.optimizer.built and vae.optimizer.iterations.numpy() == 2
    assert created_while_tracing == []
