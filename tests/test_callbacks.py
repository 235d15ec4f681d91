"""Specification of keras_vae/callbacks.py."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from keras_vae.callbacks import BestCheckpoint, KLWarmup, NonFiniteLoss, StopOnNonFinite
from keras_vae.config import ModelConfig
from keras_vae.model import VAE


def _vae(learning_rate=1e-3) -> VAE:
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(latent_dim=2, hidden_dims=(16,)))
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return vae


def test_a_non_finite_loss_stops_training_and_names_the_place():
    images = (np.random.default_rng(0).random((256, 28, 28, 1)) < 0.2).astype(np.float32)
    vae = _vae(learning_rate=1e30)  # diverges within a few steps
    with pytest.raises(NonFiniteLoss) as error:
        vae.fit(images, batch_size=32, epochs=5, verbose=0, callbacks=[StopOnNonFinite()])
    assert "in epoch 1 by step" in str(error.value)
    assert not np.isfinite(error.value.value)


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


def test_kl_warmup_raises_beta_linearly_through_the_model_variable():
    images = np.random.default_rng(0).random((256, 28, 28, 1)).astype(np.float32) < 0.2
    images = images.astype(np.float32)
    vae = _vae()
    beta = vae.sampling.beta
    history = vae.fit(images, batch_size=64, epochs=5, verbose=0,
                      callbacks=[KLWarmup(epochs=4, beta=0.8)]).history
    assert history["kl_weight"] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert vae.sampling.beta is beta and float(beta.numpy()) == pytest.approx(0.8)


def test_without_kl_weight_the_posterior_drifts_from_the_prior():
    """The warm-up really changes the objective: β = 0 leaves the KL unpenalized."""
    images = (np.random.default_rng(0).random((512, 28, 28, 1)) < 0.2).astype(np.float32)
    kl = {}
    for warmup in (0, 10):
        vae = _vae(learning_rate=3e-3)
        kl[warmup] = vae.fit(images, batch_size=64, epochs=2, verbose=0,
                             callbacks=[KLWarmup(epochs=warmup, beta=1.0)]).history["kl"][-1]
    assert kl[10] > 2 * kl[0]
