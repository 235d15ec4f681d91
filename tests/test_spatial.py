"""Specification of keras_vae/model/networks/spatial.py and latent_maps.py: the spatial
network's levels follow the image's size, it starts at its prior, trains, saves and
scores (tests/test_own_images.py trains, exports and samples one through the command)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_vae.config import ModelConfig
from keras_vae.model.networks.latent_maps import LatentMap, latent_maps, resolutions
from keras_vae.model.vae import VAE
from keras_vae.run.cli import UsageError
from tests.conftest import bars_and_blobs

SIDE = 16


def _images(n: int, side: int = SIDE, seed: int = 0) -> np.ndarray:
    return bars_and_blobs(n, side, seed)


def _model(**settings) -> VAE:
    keras.utils.set_random_seed(0)
    config = ModelConfig(**{"arch": "spatial", "likelihood": "bernoulli", "latent_dim": 2,
                            "hidden_dims": (16,), "image_shape": (SIDE, SIDE, 1),
                            **settings})
    vae = VAE(config)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)  # quick to build
    return vae


@pytest.mark.parametrize("side, expected", [
    ((28, 28), [(28, 28), (14, 14), (7, 7), (4, 4)]),
    ((64, 64), [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4)]),
    ((27, 19), [(27, 19), (14, 10), (7, 5), (4, 3)]),
    ((5, 7), [(5, 7), (3, 4)]),
    ((4, 4), [(4, 4), (2, 2)])])
def test_resolutions_halve_the_image_until_its_shorter_side_is_four(side, expected):
    assert resolutions(*side) == expected


def test_latent_maps_sit_below_the_image_two_a_resolution_one_on_top():
    assert latent_maps((28, 28, 1), 8) == [
        LatentMap(1, 14, 14, 8), LatentMap(1, 14, 14, 8), LatentMap(2, 7, 7, 8),
        LatentMap(2, 7, 7, 8), LatentMap(3, 4, 4, 8)]
    assert [m.channels for m in latent_maps((28, 28, 1), (4, 8, 16))] == [4, 4, 8, 8, 16]
    config = ModelConfig(arch="spatial", likelihood="logistic", image_shape=(28, 28, 3))
    assert config.levels == (1568, 1568, 392, 392, 128) and config.hierarchical
    assert (config.latent_dim, config.hidden_dims, config.prior) == (8, (64,), "normal")
    assert ModelConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("settings, message", [
    ({"latent_dim": (8, 4)}, r"2 latent channel counts for 3 resolutions \(14×14, 7×7, "
                             r"4×4\); give one, or one each"),
    ({"hidden_dims": (64, 32)}, "--arch spatial takes one width"),
    ({"dropout": 0.2}, "--dropout applies to --arch mlp, gated or conv")])
def test_settings_that_do_not_fit_the_spatial_network_are_refused_in_one_line(settings,
                                                                               message):
    with pytest.raises(UsageError, match=message):
        ModelConfig(**{"arch": "spatial", "likelihood": "logistic", **settings})


def test_a_fresh_model_starts_with_every_posterior_at_its_prior():
    """The prior and residual-posterior heads start at zero: below the top, q = p, so
    their KLs are exactly 0; the noise is one flat concatenation of every map."""
    vae = _model()
    images = _images(4)
    noise = np.random.default_rng(0).standard_normal((4, sum(vae.config.levels)))
    _, levels = vae.posterior_pass(images, None, noise.astype(np.float32))
    kls = [np.asarray(kl) for _, kl, _ in levels]
    assert [kl.shape for kl in kls] == [(4,)] * 3
    assert all(np.all(kl == 0) for kl in kls[:-1]) and np.all(kls[-1] > 0)
    generator = vae.generator()
    assert [i.name for i in generator.inputs] == ["noise", "temperature"]
    assert generator.inputs[0].shape == (None, 2 * 8 * 8 * 2 + 4 * 4 * 2)


@pytest.mark.parametrize("side", [1, 8])
def test_images_of_eight_pixels_a_side_or_fewer_get_one_map_and_train(side):
    """Their only resolution below the image is the top level's: one map, and an encoder
    with one output (once read as a list of its batch's rows)."""
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(arch="spatial", latent_dim=2, hidden_dims=(8,),
                          likelihood="bernoulli", image_shape=(side, side, 1)))
    top = -(-side // 2)
    assert vae.config.levels == (top * top * 2,)
    images = (np.random.default_rng(side).random((8, side, side, 1)) > 0.5).astype("float32")
    vae.compile(optimizer=keras.optimizers.Adam(), jit_compile=False)
    history = vae.fit(images, batch_size=4, epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["kl_level_1"][-1] > 0
    assert vae.sample_images(vae.sample_inputs(3, seed=0)).shape == (3, side, side, 1)


def test_pictures_and_statistics_run_in_batches_sized_by_the_feature_maps():
    """1,000 images of 64×64 a call held 1 GB in each full-resolution feature map (an
    evaluation peaked at 13.4 GB): such a model takes 152 a call, a small one 1,000, and
    batches change no picture."""
    keras.utils.set_random_seed(0)
    large = VAE(ModelConfig(arch="spatial", latent_dim=2, likelihood="bernoulli",
                            image_shape=(64, 64, 1)))
    assert large.images_per_call() == 40_000_000 // (64 * 64 * 64)  # 152
    assert VAE(ModelConfig(likelihood="bernoulli", latent_dim=2)).images_per_call() == 1000
    vae = _model()
    inputs = vae.sample_inputs(7, seed=3)
    np.testing.assert_allclose(vae.sample_images(inputs, batch_size=3),
                               vae.sample_images(inputs), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_training_lowers_the_loss_fills_every_level_and_saves(tmp_path):
    vae = _model()
    history = vae.fit(_images(400), batch_size=50, epochs=3, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert all(history[f"kl_level_{level}"][-1] > 0.1 for level in (1, 2, 3)), history
    np.testing.assert_allclose(history["kl"], np.sum(
        [history[f"kl_level_{level}"] for level in (1, 2, 3)], axis=0), rtol=1e-5)
    assert history["skipped_updates"] == [0.0] * 3
    path = str(tmp_path / "spatial.keras")
    vae.save(path)
    loaded = keras.models.load_model(path)
    inputs = vae.sample_inputs(5, seed=1, temperature=0.7)
    np.testing.assert_array_equal(vae.sample_images(inputs), loaded.sample_images(inputs))
    z_mean, _ = loaded.encode(_images(3, seed=2))
    assert z_mean.shape == (3, sum(vae.config.levels))


@pytest.mark.slow
def test_the_iwae_objective_and_the_anomaly_score_run_on_feature_maps():
    from keras_vae.measure.scoring import Scorer

    vae = _model(objective="iwae", iwae_k=3)
    history = vae.fit(_images(200), batch_size=50, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    scorer = Scorer(vae, 4)
    images = (_images(5, seed=3) * 255).astype(np.uint8)
    alone = scorer.terms(images[:1])
    together = scorer.terms(images)
    assert set(alone) == {"neg_log_likelihood", "view"}
    assert np.all(np.isfinite(np.asarray(together["neg_log_likelihood"])))
    for key in alone:
        np.testing.assert_allclose(alone[key], np.asarray(together[key])[:1], rtol=1e-4)


@pytest.mark.slow
def test_a_conditional_model_draws_each_class_from_its_own_prior():
    vae = _model(conditional=True, label_names=("bar", "blob"), class_components=1)
    images = _images(200)
    labels = (images.mean(axis=(1, 2, 3)) > np.median(images.mean(axis=(1, 2, 3))))
    vae.fit(images, labels.astype(np.int64), batch_size=50, epochs=1, verbose=0)
    assert vae.class_prior.latent_dim == vae.config.levels[-1]
    bars = vae.sample_images(vae.sample_inputs(4, seed=0, labels=np.zeros(4, np.int64)))
    blobs = vae.sample_images(vae.sample_inputs(4, seed=0, labels=np.ones(4, np.int64)))
    assert np.abs(bars - blobs).max() > 1e-3


def test_the_levels_picture_keeps_whole_resolutions():
    from keras_vae.measure.pictures import kept_rows

    spatial = ModelConfig(arch="spatial", likelihood="logistic", image_shape=(28, 28, 1))
    assert kept_rows(spatial) == [(3, "7x7+ kept"), (5, "4x4+ kept")]  # the font has no ×
    dense = ModelConfig(likelihood="logistic", latent_dim=(8, 4, 2))
    assert kept_rows(dense) == [(2, "z2+ kept"), (3, "z3+ kept")]


def test_scoring_batches_are_sized_by_the_feature_maps_not_the_outputs():
    """A spatial decoder's largest tensor is its full-resolution state (16×16×16 here),
    not its 16×16×1 outputs: sizing the scorer's batches by the outputs held 12 GB on
    Fashion-MNIST."""
    from keras_vae.measure.nll import largest_tensor_per_decoding
    from keras_vae.measure.scoring import batch_size_for

    vae = _model()
    assert largest_tensor_per_decoding(vae) == SIDE * SIDE * 16
    assert batch_size_for(vae, 16) == 40_000_000 // (4 * 16 * SIDE * SIDE * 16)  # 152


def test_a_prior_that_learned_a_huge_width_still_draws_finite_pictures():
    """Every level's log-variance stops at `LOG_VAR_CEILING` (a 32×32 colour model drew
    NaN at temperature 1 without it)."""
    from keras_vae.model.networks.spatial import LOG_VAR_CEILING

    vae = _model()
    head = vae.prior_heads[0]
    bias = np.asarray(head.bias)
    bias[bias.size // 2:] = 80.0  # the log-variance half: σ = e^40
    head.bias.assign(bias)
    _, log_var = vae.network.prior_at(0, np.zeros((2, 8, 8, 16), np.float32))
    assert float(np.max(log_var)) == LOG_VAR_CEILING
    drawn = vae.sample_images(vae.sample_inputs(8, seed=0, temperature=1.0))
    assert np.all(np.isfinite(drawn))
