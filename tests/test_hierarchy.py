"""Specification of keras_vae/model/vae.py with several levels: a top-down VAE is measured
honestly, trains, saves, and ships whole."""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import onnxruntime as ort
import pytest
from keras import ops

from export.pipeline import export_model
from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.measure.nll import importance_nll
from keras_vae.model.vae import VAE
from serving import sample, vae_decoder, vae_draws
from tests.conftest import bars_and_blobs

SIDE = 8


def _images(n: int, seed: int = 0) -> np.ndarray:
    return bars_and_blobs(n, SIDE, seed)


def _model(levels=(1, 1), hidden=64, side=SIDE, **settings) -> VAE:
    keras.utils.set_random_seed(0)
    config = ModelConfig(latent_dim=levels, hidden_dims=(hidden,), likelihood="bernoulli",
                         image_shape=(side, side, 1), **settings)
    vae = VAE(config)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    return vae


@pytest.fixture(scope="module", params=["normal", "vamp"])
def trained(request):
    """Two 1-D levels trained on the bars and blobs, the top level's prior N(0, 1) or a
    VampPrior of 5 pseudo-inputs."""
    vamp = {"prior": "vamp", "pseudo_inputs": 5} if request.param == "vamp" else {}
    vae = _model(**vamp)
    vae.fit(_images(4000), batch_size=100, epochs=8, verbose=0)
    return vae


def test_one_level_and_several_are_one_model_class_with_their_levels():
    one = VAE(ModelConfig(latent_dim=4, likelihood="bernoulli"))
    several = VAE(ModelConfig(latent_dim=(6, 3), likelihood="bernoulli"))
    assert type(one) is type(several) is VAE
    assert [type(v.network).__name__ for v in (one, several)] == ["OneLevel", "DenseLevels"]
    assert [m.name for m in one.metrics] == ["loss", "reconstruction", "kl"]
    assert [m.name for m in several.metrics] == ["loss", "reconstruction", "kl", "kl_level_1",
                                                 "kl_level_2", "skipped_updates"]


def _log_top_prior(vae: VAE, z2: np.ndarray) -> np.ndarray:
    """log p(z_2) [points, 1] for 1-D z_2: N(0, 1), or the VampPrior's mixture written out
    (the mean over components of each component's normal density)."""
    if vae.pseudo_inputs is None:
        return -0.5 * (z2**2 + math.log(2 * math.pi))
    means, log_vars = (np.asarray(t, np.float64)[:, 0] for t in vae.prior_components())
    log_each = -0.5 * ((z2 - means) ** 2 / np.exp(log_vars) + log_vars + math.log(2 * math.pi))
    top = log_each.max(axis=1, keepdims=True)
    return top + np.log(np.exp(log_each - top).mean(axis=1, keepdims=True))


def _exact_nll(vae: VAE, images: np.ndarray, points: int = 1200) -> np.ndarray:
    """−log p(x) = −log ∫∫ p(x|z_1, z_2) p(z_1|z_2) p(z_2) dz_1 dz_2 for 1-D levels, on a
    grid: z_2 over ±7, and for each z_2, z_1 = μ_1(z_2) + σ_1(z_2)·u with u over ±8 (the
    prior's own scale, so its density is N(u) whatever σ_1)."""
    z2 = np.linspace(-7, 7, points, dtype=np.float32)[:, None]
    u = np.linspace(-8, 8, 400, dtype=np.float32)
    state = vae.states[-1](z2)
    mean, log_var = (np.asarray(t) for t in ops.split(vae.prior_heads[0](state), 2, axis=-1))
    z1 = mean + np.exp(0.5 * log_var) * u  # [points, 400]
    log_prior = (_log_top_prior(vae, z2) - 0.5 * (u**2 + math.log(2 * math.pi))
                 + math.log((z2[1, 0] - z2[0, 0]) * (u[1] - u[0])))  # with the cell sizes
    z = np.stack([z1.ravel(), np.repeat(z2[:, 0], len(u))], axis=1)
    logits = np.concatenate([np.asarray(vae.decode(z[i:i + 60_000]))
                             for i in range(0, len(z), 60_000)]).reshape(len(z), -1)
    flat = images.reshape(len(images), -1)
    log_px = -(np.logaddexp(0, logits).sum(-1)[None] - flat @ logits.T)  # [images, grid]
    joint = log_px + log_prior.ravel()[None]
    top = joint.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(joint - top).sum(axis=1)))


@pytest.mark.slow
def test_the_importance_sampled_nll_matches_the_exact_integral_over_two_levels(trained):
    """Two 1-D levels: the k = 5000 estimate over both levels' posteriors agrees with the
    likelihood integrated on a 2-D grid (refining the grid moves it by nothing that
    matters)."""
    images = _images(40, seed=9)
    exact = _exact_nll(trained, images)
    finer = _exact_nll(trained, images, points=2400)
    assert np.abs(exact - finer).max() < 0.02
    estimate = importance_nll(trained, images, k=5000, seed=3)
    assert abs(estimate.mean() - exact.mean()) < 0.15, (estimate.mean(), exact.mean())
    assert np.percentile(np.abs(estimate - exact), 90) < 0.4


@pytest.mark.slow
def test_the_bounds_order_elbo_iwae_and_the_nll_estimate(trained):
    """ELBO ≥ IWAE_5 ≥ IWAE_50 ≥ NLL(k = 1000) in nats, for a hierarchy as for one level."""
    images = _images(300, seed=5)

    def objective(model, draws=4):
        return np.mean([float(model.loss_terms(images)[0]) for _ in range(draws)])

    iwae = {}
    for k in (5, 50):
        other = VAE(ModelConfig(**{**trained.config.to_dict(), "objective": "iwae",
                                        "iwae_k": k}))
        other.set_weights(trained.get_weights())
        iwae[k] = objective(other)
    elbo = objective(trained)
    nll = importance_nll(trained, images, k=1000, seed=1).mean()
    assert elbo > iwae[5] > iwae[50] > nll


def test_a_vamp_top_level_is_sampled_from_the_component_its_draw_picks():
    """At temperature 0 the generator's top level is the mean of component ⌊u·K⌋ (u = 1:
    the last), and the level below it the prior's mean given that top level."""
    vae = _model(levels=(2, 3), prior="vamp", pseudo_inputs=4)
    vae.fit(_images(200), batch_size=100, epochs=1, verbose=0)  # components apart
    means = np.asarray(vae.prior_components()[0])
    draws = np.array([0.0, 0.3, 0.74, 0.99, 1.0], np.float32)
    drawn = vae.sample_images({"noise": np.ones((5, 5), np.float32),
                               "temperature": np.zeros(5, np.float32),
                               "component_draw": draws})
    z_top = means[[0, 1, 2, 3, 3]]
    level_1 = np.asarray(ops.split(vae.prior_heads[0](vae.states[-1](z_top)), 2, axis=-1)[0])
    expected = vae.likelihood.mean(vae.decode(np.concatenate([level_1, z_top], axis=1)))
    np.testing.assert_allclose(drawn, np.asarray(expected), atol=1e-6)
    assert np.abs(drawn[0] - drawn[1]).max() > 1e-5  # components apart beyond atol


def test_a_vamp_top_level_trains_with_a_sampled_kl_and_its_metrics():
    """The top level's KL to the mixture is the one-sample estimate log q − log p at the
    drawn z (it may be negative for one image, never on average here), the pseudo-inputs
    learn, and the KLs of the levels add up."""
    vae = _model(levels=(4, 2), prior="vamp", pseudo_inputs=10)
    before = np.asarray(vae.pseudo_inputs.images())
    history = vae.fit(_images(1000), batch_size=100, epochs=4, verbose=0).history
    assert history["loss"][-1] < 0.85 * history["loss"][0]
    assert history["kl_level_2"][-1] > 0.5
    np.testing.assert_allclose(history["kl"], np.add(history["kl_level_1"],
                                                     history["kl_level_2"]), rtol=1e-5)
    assert np.abs(np.asarray(vae.pseudo_inputs.images()) - before).max() > 1e-3


def test_training_lowers_the_loss_and_reports_each_levels_kl():
    vae = _model(levels=(4, 2))
    history = vae.fit(_images(1000), batch_size=100, epochs=4, verbose=0).history
    assert np.all(np.diff(history["loss"]) < 0)
    assert history["loss"][-1] < 0.85 * history["loss"][0]
    assert history["kl_level_2"][-1] > 1.0  # the top level holds information
    np.testing.assert_allclose(history["kl"], np.add(history["kl_level_1"],
                                                     history["kl_level_2"]), rtol=1e-5)
    assert history["skipped_updates"] == [0.0] * 4


@pytest.mark.slow
def test_free_bits_keep_a_level_from_emptying_and_report_the_true_loss():
    """With λ nats free per level, level 1 holds more than it does when every nat is
    charged, and the reported loss is still reconstruction + the true KL."""
    held = {}
    for free_bits in (0.0, 1.5):
        history = _model(levels=(4, 2), free_bits=free_bits).fit(
            _images(1000), batch_size=100, epochs=4, verbose=0).history
        held[free_bits] = history["kl_level_1"][-1]
        np.testing.assert_allclose(history["loss"], np.add(history["reconstruction"],
                                                           history["kl"]), rtol=1e-5)
    assert held[1.5] > 0.3 and held[1.5] > 4 * held[0.0], held  # 0.64 against 0.08


def test_an_update_with_a_non_finite_gradient_is_skipped_and_counted():
    """A batch whose loss is finite but whose gradient is not changes no weight."""
    vae = _model(levels=(2, 2))
    vae.fit(_images(100), batch_size=100, epochs=1, verbose=0)  # builds the optimizer
    kernel = vae.decoder.get_layer("pixel_parameters").kernel
    kernel.assign(np.full(kernel.shape, 1e38, np.float32))  # gradients overflow
    weights = [np.array(w) for w in vae.trainable_weights]
    logs = vae.train_on_batch(_images(100), return_dict=True)
    assert logs["skipped_updates"] == 1.0
    after = [np.array(w) for w in vae.trainable_weights]
    assert all(np.array_equal(a, b) for a, b in zip(weights, after, strict=True))


def test_a_saved_hierarchy_loads_with_the_same_weights_and_outputs(trained, tmp_path):
    path = str(tmp_path / "h.keras")
    trained.save(path)
    loaded = keras.models.load_model(path)
    images = _images(6, seed=2)
    for mine, theirs in zip(trained.encode(images), loaded.encode(images), strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    inputs = trained.sample_inputs(5, seed=1, temperature=0.7)
    np.testing.assert_array_equal(trained.sample_images(inputs), loaded.sample_images(inputs))


def test_temperature_scales_every_levels_spread():
    """At temperature 0 every draw is the prior's mean path: the same picture whatever
    the noise."""
    vae = _model(levels=(3, 2))
    cold = vae.sample_images(vae.sample_inputs(4, seed=0, temperature=0.0))
    np.testing.assert_allclose(cold, cold[[0, 0, 0, 0]], atol=1e-6)
    warm = vae.sample_images(vae.sample_inputs(4, seed=0, temperature=1.0))
    assert np.abs(warm - warm[[0, 0, 0, 0]]).max() > 0


PRIORS = {"normal": {},
          "conditional": {"conditional": True, "label_names": ("bar", "blob"),
                          "class_components": 1},
          "vamp": {"prior": "vamp", "pseudo_inputs": 5, "dropout": 0.3},  # dropped in export
          "class mixture": {"conditional": True, "label_names": ("bar", "blob"),
                            "class_components": 3}}


@pytest.mark.slow
@pytest.mark.parametrize("prior", list(PRIORS))
def test_the_whole_top_down_decoder_ships_and_samples_alike_everywhere(tmp_path, prior):
    """Every format passes the export's checks (it raises otherwise); the edge sampler's
    seeded draw through decoder.onnx is the Keras generator's for the same noise (and
    for a mixture prior, a VampPrior or one per class, the same component draws, taken
    from the seed)."""
    vae = _model(levels=(1, 1), hidden=320, side=16, **PRIORS[prior])
    export_dir = str(tmp_path / "export")
    result = export_model(vae, export_dir, TrainConfig(model=vae.config, dataset="npz:x"))
    assert result["int8"]["size_ratio"] <= 0.3
    assert not os.path.exists(os.path.join(export_dir, "prior.npz"))  # held in the graph
    session = ort.InferenceSession(os.path.join(export_dir, "decoder.onnx"))
    extra = {"normal": [], "conditional": ["label"], "vamp": ["component_draw"],
             "class mixture": ["label", "component_draw"]}[prior]
    assert [i.name for i in session.get_inputs()] == ["noise", "temperature", *extra]
    noise = vae_draws.seeded_noise(6, 2, seed=4)
    labels = np.array([0, 1, 0, 1, 0, 1]) if "label" in extra else None
    draws = vae_draws.component_draws(extra, 6, seed=4)
    drawn = vae_decoder.decode(session, noise, labels, temperature=0.6, component_draw=draws)
    inputs = {"noise": noise, "temperature": np.full(6, 0.6, np.float32),
              **({"label": labels} if labels is not None else {}),
              **({"component_draw": draws} if draws is not None else {})}
    np.testing.assert_allclose(drawn, vae.sample_images(inputs), atol=1e-5)
    if prior == "vamp":  # the command: no prior file, the seed's component draws
        out = str(tmp_path / "grid.png")
        said = sample.main([os.path.join(export_dir, "decoder.onnx"), "--n", "4", "--out",
                            out])
        assert "z from its VampPrior" in said and os.path.getsize(out) > 0
    if prior == "class mixture":  # the command: the class asked for, the seed's draws
        out = str(tmp_path / "blobs.png")
        said = sample.main([os.path.join(export_dir, "decoder.onnx"), "--label", "blob",
                            "--n", "4", "--out", out])
        assert "z from its class's mixture" in said and os.path.getsize(out) > 0


@pytest.mark.parametrize("levels", [(4, 2), 4])
def test_dropout_changes_training_passes_alone(levels):
    """With `dropout`, a training pass of the same images and ε draws fresh masks (two
    passes differ) while an inference pass is that of the same weights without dropout,
    which is what every export computes; a hierarchy's top-down updates and last state,
    a one-level decoder's hidden layers, are where it acts."""
    images = _images(8)
    plain, dropped = (_model(levels=levels, hidden=32, dropout=rate) for rate in (0.0, 0.5))
    dropped.set_weights(plain.get_weights())  # dropout adds no weights
    names = {layer.name for layer in dropped._flatten_layers()}
    assert ({"top_down_dropout", "state_dropout"} if isinstance(levels, tuple)
            else {"decoder_dropout_0"}) <= names
    epsilon = np.random.default_rng(0).normal(size=(8, sum(plain.config.levels)))

    def parameters(vae, training):
        z = (vae.posterior_pass(images, None, epsilon, training)[0]
             if vae.config.hierarchical else vae.decode(epsilon.astype(np.float32),
                                                         training=training))
        return ops.convert_to_numpy(z)

    np.testing.assert_allclose(parameters(dropped, False), parameters(plain, False),
                               atol=1e-6)
    np.testing.assert_allclose(parameters(plain, True), parameters(plain, False), atol=1e-6)
    first, second = parameters(dropped, True), parameters(dropped, True)
    assert np.abs(first - parameters(plain, False)).mean() > 1e-3
    assert np.abs(first - second).mean() > 1e-3


def test_a_run_whose_every_update_is_skipped_stops_with_one_line():
    """Skipping every update would train on without changing a weight: the run stops
    after the first such epoch, or within a long one, saying why."""
    from keras_vae.run.callbacks import NonFiniteLoss, StopOnNonFinite

    vae = _model(levels=(2, 2))
    vae.fit(_images(100), batch_size=100, epochs=1, verbose=0)  # builds the optimizer
    kernel = vae.decoder.get_layer("pixel_parameters").kernel
    kernel.assign(np.full(kernel.shape, 1e6, np.float32))  # every gradient far too large
    with pytest.raises(NonFiniteLoss) as error:
        vae.fit(_images(300), batch_size=100, epochs=3, verbose=0,
                callbacks=[StopOnNonFinite()])
    assert str(error.value) == ("every update of epoch 1 was skipped (its gradients were "
                                "not finite or too large)")
    # An epoch long enough is stopped within it, once more than half of at least 100
    # updates were skipped, not after the epoch (or an epoch's every update) is lost.
    with pytest.raises(NonFiniteLoss) as error:
        vae.fit(_images(1000), batch_size=4, epochs=1, verbose=0,
                callbacks=[StopOnNonFinite()])
    assert str(error.value) == ("100 of the first 100 updates of epoch 1 were skipped (their "
                                "gradients were not finite or too large): training diverged")
