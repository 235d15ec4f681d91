"""Specification of keras_vae/run/callbacks.py."""

from __future__ import annotations

import os
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae.config import ModelConfig
from keras_vae.data.pipeline import Split, epoch_variable, make_dataset
from keras_vae.model.vae import VAE
from keras_vae.run.callbacks import (
    BestCheckpoint,
    EpochSeconds,
    KLWarmup,
    NonFiniteLoss,
    StopOnNonFinite,
    TrainingEpoch,
)


def _vae(learning_rate=1e-3) -> VAE:
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=2, hidden_dims=(16,)))
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return vae


def test_a_non_finite_loss_stops_training_and_names_the_place():
    images = (np.random.default_rng(0).random((256, 28, 28, 1)) < 0.2).astype(np.float32)
    vae = _vae(learning_rate=1e30)  # diverges within a few steps
    with pytest.raises(NonFiniteLoss) as error:
        vae.fit(images, batch_size=32, epochs=5, verbose=0, callbacks=[StopOnNonFinite()])
    assert "in epoch 1 by step" in str(error.value)
    assert not np.isfinite(error.value.value)


class SlowValidation(keras.callbacks.Callback):
    """Makes every validation pass last at least `seconds` longer."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_test_begin(self, logs=None):
        time.sleep(self.seconds)


def test_training_seconds_leave_out_the_validation_pass():
    """Each validation pass is made 1 s longer: the epoch's wall time holds that second,
    its training time does not; without validation the two are one."""
    images = (np.random.default_rng(0).random((256, 28, 28, 1)) < 0.2).astype(np.float32)
    vae, timer = _vae(), EpochSeconds()
    vae.fit(images, validation_data=(images,), batch_size=128, epochs=2, verbose=0,
            callbacks=[timer, SlowValidation(1.0)])
    for whole, training in zip(timer.seconds, timer.train_seconds, strict=True):
        assert 0 < training <= whole - 1.0
    vae.fit(images, batch_size=128, epochs=1, verbose=0, callbacks=[timer])
    assert timer.train_seconds[-1] == timer.seconds[-1]


def test_best_checkpoint_saves_only_improvements_over_the_resumed_best(tmp_path):
    path = str(tmp_path / "best.keras")
    callback = BestCheckpoint(path, "val_loss", best=100.0)
    callback.set_model(_vae())
    callback.on_epoch_end(0, {"val_loss": 120.0})
    assert not os.path.exists(path)
    callback.on_epoch_end(1, {"val_loss": 90.0})
    assert os.path.exists(path) and callback.best == 90.0
    assert os.listdir(tmp_path) == ["best.keras"]  # no temporary left behind
    keras.models.load_model(path)


def test_kl_warmup_raises_beta_linearly_step_by_step_through_the_model_variable():
    images = np.random.default_rng(0).random((256, 28, 28, 1)).astype(np.float32) < 0.2
    images = images.astype(np.float32)
    vae = _vae()
    beta = vae.kl_term.beta
    seen = []
    recorder = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: seen.append(float(beta.numpy())))
    history = vae.fit(images, batch_size=64, epochs=5, verbose=0,
                      callbacks=[KLWarmup(epochs=4, beta=0.8), recorder]).history
    # 4 steps an epoch: step s of epoch e trains with 0.8·min(1, (e + s/4) / 4).
    assert seen == pytest.approx([0.8 * min(1.0, (e + s / 4) / 4)
                                  for e in range(5) for s in range(4)])
    assert seen[1] > 0.0  # the first epoch already charges the KL
    assert history["kl_weight"] == pytest.approx([0.2, 0.4, 0.6, 0.8, 0.8])
    assert vae.kl_term.beta is beta and float(beta.numpy()) == pytest.approx(0.8)


def test_without_kl_weight_the_posterior_drifts_from_the_prior():
    """The warm-up really changes the objective: β = 0 leaves the KL unpenalized."""
    images = (np.random.default_rng(0).random((512, 28, 28, 1)) < 0.2).astype(np.float32)
    kl = {}
    for warmup in (0, 10):
        vae = _vae(learning_rate=3e-3)
        kl[warmup] = vae.fit(images, batch_size=64, epochs=2, verbose=0,
                             callbacks=[KLWarmup(epochs=warmup, beta=1.0)]).history["kl"][-1]
    assert kl[10] > 2 * kl[0]


def test_training_epoch_advances_at_the_last_step_before_the_next_iterator_opens():
    """Keras opens epoch e + 1's iterator right after epoch e's last (multi-)step, before
    on_epoch_end; with steps_per_execution > 1 that step's index can pass the epoch end."""
    epoch = tf.Variable(7, dtype=tf.int64)
    callback = TrainingEpoch(epoch)
    callback.set_params({"steps": 10})
    callback.on_epoch_begin(0)
    assert int(epoch.numpy()) == 0
    callback.on_train_batch_end(3)
    assert int(epoch.numpy()) == 0
    callback.on_train_batch_end(11)  # steps 8-11 of a 4-step execution: the last one
    assert int(epoch.numpy()) == 1
    callback.on_epoch_begin(4)  # a resumed run's first epoch
    assert int(epoch.numpy()) == 4


def test_fit_with_several_steps_per_call_ends_with_the_epoch_count():
    images = (np.random.default_rng(0).random((100, 28, 28, 1)) < 0.2).astype(np.uint8)
    epoch = epoch_variable()
    data = make_dataset(Split(images, None, 1), 10, shuffle_seed=0, epoch=epoch)
    vae = _vae()
    vae.compile(optimizer="adam", steps_per_execution=4)
    vae.fit(data, epochs=3, verbose=0, callbacks=[TrainingEpoch(epoch)])
    assert int(epoch.numpy()) == 3


def test_after_the_first_epoch_one_line_says_how_long_the_rest_take(monkeypatch, capsys):
    from keras_vae.run import callbacks

    clock = iter([100.0, 112.0])
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    expected = callbacks.ExpectedTime(epochs=301)
    expected.on_epoch_begin(0)
    expected.on_epoch_end(0)
    expected.on_epoch_begin(1)
    expected.on_epoch_end(1)  # said once
    assert capsys.readouterr().out == ("epoch 1 of 301 took 12 s; the 300 left take about "
                                       "60 min at that pace\n")
