"""Specification of keras_vae/model/vae.py: the sampling, the two loss terms, training, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae.config import ModelConfig
from keras_vae.model.densities import gaussian_kl
from keras_vae.model.likelihoods.bernoulli import Bernoulli
from keras_vae.model.vae import VAE, KLTerm, Sampling


def _small_vae(**overrides) -> VAE:
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(**{"likelihood": "bernoulli", "latent_dim": 4, "hidden_dims": (32,),
                             "seed": 3, **overrides}))
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    return vae


def test_add_loss_kl_equals_monte_carlo_kl_for_known_mean_and_sigma():
    z_mean = np.array([[0.5, -1.0, 2.0]], dtype=np.float32)
    sigma = np.array([[0.3, 1.5, 0.8]], dtype=np.float32)
    z_log_var = np.log(sigma**2)
    sampling, kl_term = Sampling(seed=7), KLTerm()
    kl_term(gaussian_kl(z_mean, z_log_var))
    (analytic,) = [float(loss) for loss in kl_term.losses]

    # KL = E_q[log q(z) − log p(z)], estimated from 200k draws of the same layer.
    n = 200_000
    z = np.asarray(sampling([np.repeat(z_mean, n, 0), np.repeat(z_log_var, n, 0)]))
    log_q = -0.5 * (((z - z_mean) / sigma) ** 2 + np.log(2 * np.pi * sigma**2))
    log_p = -0.5 * (z**2 + np.log(2 * np.pi))
    monte_carlo = float(np.mean(np.sum(log_q - log_p, axis=1)))

    exact = float(np.sum(0.5 * (z_mean**2 + sigma**2 - 1 - np.log(sigma**2))))
    assert analytic == pytest.approx(exact, rel=1e-5)
    assert monte_carlo == pytest.approx(analytic, abs=0.02)


def test_sampled_z_has_the_posterior_mean_and_standard_deviation():
    z_mean = np.full((100_000, 2), [1.0, -2.0], dtype=np.float32)
    z_log_var = np.full((100_000, 2), np.log([0.25, 4.0]), dtype=np.float32)
    z = np.asarray(Sampling(seed=1)([z_mean, z_log_var]))
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.01)


def test_gradients_reach_z_mean_and_z_log_var_through_the_sampling():
    z_mean = tf.Variable(tf.fill((8, 3), 0.3))
    z_log_var = tf.Variable(tf.fill((8, 3), -0.5))
    sampling = Sampling(seed=2)
    with tf.GradientTape() as tape:
        z = sampling([z_mean, z_log_var])
        downstream = tf.reduce_sum(z**2)  # only the sampled path, not the KL
    grad_mean, grad_log_var = tape.gradient(downstream, [z_mean, z_log_var])
    assert np.all(np.abs(grad_mean.numpy()) > 0)
    assert np.count_nonzero(grad_log_var.numpy()) == grad_log_var.shape.num_elements()


def test_both_encoder_heads_receive_gradients_from_the_reconstruction_term():
    vae = _small_vae()
    images = (np.random.default_rng(0).random((16, 28, 28, 1)) < 0.2).astype(np.float32)
    with tf.GradientTape() as tape:
        _, reconstruction, _ = vae.neg_elbo_terms(images, training=True)
    heads = [vae.encoder.get_layer("z_mean").kernel, vae.encoder.get_layer("z_log_var").kernel]
    for gradient in tape.gradient(reconstruction, heads):
        assert float(tf.reduce_max(tf.abs(gradient))) > 0


def test_reconstruction_is_finite_for_saturated_pixels():
    images = np.ones((2, 28, 28, 1), dtype=np.float32)
    logits = np.full((2, 28, 28, 1), -1000.0, dtype=np.float32)
    nll = np.asarray(Bernoulli(images.shape[1:]).neg_log_prob(images, logits))
    np.testing.assert_allclose(nll, 784 * 1000.0, rtol=1e-6)  # −log sigmoid(−1000) ≈ 1000


def test_reported_loss_is_reconstruction_plus_kl(binarized_mnist_splits):
    vae = _small_vae()
    images = binarized_mnist_splits["test"].as_float()[:512]
    metrics = vae.evaluate(images, batch_size=128, return_dict=True, verbose=0)
    assert metrics["reconstruction"] > 100 and metrics["kl"] > 0
    assert metrics["loss"] == pytest.approx(metrics["reconstruction"] + metrics["kl"], rel=1e-6)


def deterministic_neg_elbo(vae: VAE, images: np.ndarray) -> np.ndarray:
    """Makes q(z|x) a point mass (log-variance −40, so z = z_mean to 2e-9) and returns each
    image's negative ELBO computed in one batch: the figure every reported loss must
    average, whatever the batches."""
    head = vae.encoder.get_layer("z_log_var")
    head.kernel.assign(np.zeros(head.kernel.shape, np.float32))
    head.bias.assign(np.full(head.bias.shape, -40.0, np.float32))
    z_mean, z_log_var = vae.encode(images)
    reconstruction = vae.likelihood.neg_log_prob(images, vae.decode(z_mean))
    return np.asarray(reconstruction + gaussian_kl(z_mean, z_log_var), np.float64)


def test_reported_losses_are_means_over_examples_whatever_the_batch_size():
    """300 images at batch 128: 256 half-inked ones (about 1,900 nats each) and a last,
    short batch of 44 blank ones (about 5 nats). The reported loss is the mean over the
    300 images (1,750 nats); the mean of the three batch means is 1,386."""
    vae = _small_vae()
    output = vae.decoder.get_layer("pixel_parameters")
    output.bias.assign(np.full(output.bias.shape, -5.0, np.float32))
    rng = np.random.default_rng(4)
    images = np.concatenate([(rng.random((256, 28, 28, 1)) < 0.5),
                             np.zeros((44, 28, 28, 1))]).astype(np.float32)
    per_example = deterministic_neg_elbo(vae, images)
    for batch_size in (128, 300, 7):
        metrics = vae.evaluate(images, batch_size=batch_size, return_dict=True, verbose=0)
        assert metrics["loss"] == pytest.approx(per_example.mean(), rel=1e-5), batch_size


def test_kl_is_counted_once_per_step_not_accumulated():
    vae = _small_vae()
    images = (np.random.default_rng(1).random((32, 28, 28, 1)) < 0.2).astype(np.float32)
    for _ in range(3):
        objective, reconstruction, kl_by_level = vae.neg_elbo_terms(images, training=True)
        assert len(vae.losses) == 1 and kl_by_level.shape == (1, 32)
        assert float(objective) == pytest.approx(float(np.mean(reconstruction + kl_by_level[0])),
                                                  rel=1e-6)


def test_beta_weights_the_kl_in_the_objective_but_not_in_the_reported_loss():
    vae = _small_vae(beta=0.25)
    images = (np.random.default_rng(2).random((32, 28, 28, 1)) < 0.2).astype(np.float32)
    objective, reconstruction, kl_by_level = vae.neg_elbo_terms(images, training=True)
    assert float(objective) == pytest.approx(
        float(np.mean(reconstruction + 0.25 * kl_by_level[0])), rel=1e-6)
    metrics = vae.evaluate(images, batch_size=32, return_dict=True, verbose=0)
    assert metrics["loss"] == pytest.approx(metrics["reconstruction"] + metrics["kl"], rel=1e-6)


@pytest.mark.slow
def test_a_few_hundred_steps_on_a_fixed_batch_lower_the_loss_a_lot(binarized_mnist_splits):
    vae = _small_vae(latent_dim=8, hidden_dims=(128,))
    images = binarized_mnist_splits["train"].as_float()[:128]
    before = vae.evaluate(images, batch_size=128, return_dict=True, verbose=0)["loss"]
    vae.fit(tf.data.Dataset.from_tensors(images).repeat(300), epochs=1, verbose=0)
    after = vae.evaluate(images, batch_size=128, return_dict=True, verbose=0)["loss"]
    assert after < 0.5 * before, (before, after)


@pytest.mark.parametrize("variant", [{}, {"prior": "vamp", "pseudo_inputs": 10},
                                     {"arch": "gated"}], ids=["normal", "vamp", "gated"])
def test_keras_file_round_trip_gives_identical_outputs(tmp_path, variant):
    vae = _small_vae(**variant)
    images = (np.random.default_rng(3).random((8, 28, 28, 1)) < 0.2).astype(np.float32)
    vae.fit(images, batch_size=8, epochs=2, verbose=0)
    path = str(tmp_path / "vae.keras")
    vae.save(path)
    restored = keras.models.load_model(path)

    assert restored.config == vae.config
    # Same weights and the same position in the ε stream → the same sampled outputs.
    np.testing.assert_array_equal(np.asarray(restored(images)), np.asarray(vae(images)))
    np.testing.assert_array_equal(np.asarray(restored(images)), np.asarray(vae(images)))
    # The VampPrior's components too:
    for mine, theirs in zip(vae.prior_components(), restored.prior_components(), strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


def test_latent_dim_two_trains_and_samples():
    vae = _small_vae(latent_dim=2)
    images = (np.random.default_rng(4).random((64, 28, 28, 1)) < 0.2).astype(np.float32)
    history = vae.fit(images, batch_size=32, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert vae.decoder(np.zeros((5, 2), np.float32)).shape == (5, 28, 28, 1)


def _same_weights_with(vae: VAE, **overrides) -> VAE:
    other = VAE(ModelConfig(**{**vae.config.to_dict(), "hidden_dims": vae.config.hidden_dims,
                               **overrides}))
    other.set_weights(vae.get_weights())
    return other


@pytest.mark.slow
def test_the_iwae_bound_tightens_with_k_and_starts_at_the_elbo(binarized_mnist_splits):
    """Burda et al.: ELBO ≤ IWAE_5 ≤ IWAE_50 ≤ log p(x); in nats, the objectives fall."""
    vae = _small_vae()
    vae.fit(binarized_mnist_splits["train"].as_float()[:5000], batch_size=100, epochs=2,
            verbose=0)
    images = tf.constant(binarized_mnist_splits["test"].as_float()[:500])

    def objective(model, draws=5):
        return np.mean([float(model.loss_terms(images, training=False)[0])
                        for _ in range(draws)])

    elbo = objective(vae)
    iwae_1 = objective(_same_weights_with(vae, objective="iwae", iwae_k=1), draws=40)
    iwae_5 = objective(_same_weights_with(vae, objective="iwae", iwae_k=5))
    iwae_50 = objective(_same_weights_with(vae, objective="iwae", iwae_k=50))
    assert iwae_1 == pytest.approx(elbo, abs=0.3)  # K = 1: a Monte Carlo KL, same mean
    assert elbo > iwae_5 + 0.5 > iwae_50 + 0.5 + 0.3


@pytest.mark.slow
def test_iwae_training_lowers_its_objective_and_reports_the_elbo(binarized_mnist_splits):
    vae = _small_vae(objective="iwae", iwae_k=5)
    history = vae.fit(binarized_mnist_splits["train"].as_float()[:3000], batch_size=100,
                      epochs=3, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    np.testing.assert_allclose(history["loss"],
                               np.add(history["reconstruction"], history["kl"]), rtol=1e-5)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_a_conditional_model_takes_the_label_in_both_networks(arch):
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=3, hidden_dims=(32,), arch=arch,
                          conditional=True,
                          label_names=("a", "b", "c"), image_shape=(8, 8, 1)))
    assert [i.name for i in vae.encoder.inputs] == ["image", "label"]
    assert [i.name for i in vae.decoder.inputs] == ["z", "label"]
    z = np.zeros((3, 3), np.float32)
    images = np.asarray(vae.mean_image(z, np.arange(3)))
    assert np.abs(images[0] - images[1]).max() > 0 and np.abs(images[1] - images[2]).max() > 0
    with pytest.raises(ValueError, match="pass the labels"):
        vae.mean_image(z)


@pytest.mark.parametrize("arch", ["mlp", "gated"])
def test_every_dense_layer_of_a_conditional_decoder_takes_the_label(arch):
    """Its kernel has a row per class besides those of the layer below, and a label
    changes that layer's output for the same input below it: the last layer's own E[y]
    is a template of the class's pixels."""
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=3, hidden_dims=(16, 32),
                          arch=arch, conditional=True, label_names=("a", "b", "c"),
                          image_shape=(8, 8, 1)))
    dense_layers = [layer for layer in vae.decoder.layers if isinstance(layer, keras.layers.Dense)]
    widths_below = [3, 32, 16] if arch == "mlp" else [3, 3, 32, 32, 16]
    assert [layer.kernel.shape[0] for layer in dense_layers] == [w + 3 for w in widths_below]
    pixels = vae.decoder.get_layer("pixel_parameters")
    below = np.zeros((3, 16), np.float32)
    one_hot = np.eye(3, dtype=np.float32)
    outputs = np.asarray(pixels(np.concatenate([below, one_hot], axis=1)))
    assert np.abs(outputs[0] - outputs[1]).max() > 0 and np.abs(outputs[1] - outputs[2]).max() > 0


@pytest.mark.parametrize("latent_dim", [3, (3, 2)])
def test_reconstructions_decode_each_images_posterior_mean_given_its_label(latent_dim):
    """In batches (7 images, batches of 3) and with each image's own label: the same as
    decoding the posterior means of all at once."""
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=latent_dim,
                               hidden_dims=(32,), conditional=True,
                               label_names=("a", "b", "c"), image_shape=(8, 8, 1)))
    rng = np.random.default_rng(0)
    images = (rng.random((7, 8, 8, 1)) < 0.5).astype(np.float32)
    labels = rng.integers(0, 3, 7)
    whole = np.asarray(vae.mean_image(np.asarray(vae.encode(images, labels)[0]), labels))
    batched = vae.reconstructions(images, labels, batch_size=3)
    np.testing.assert_allclose(batched, whole, atol=1e-6)
    relabelled = vae.reconstructions(images, (labels + 1) % 3, batch_size=3)
    assert np.abs(relabelled - whole).max() > 1e-3  # the label is used


def test_the_kl_weight_loads_from_checkpoints_that_kept_it_elsewhere():
    """keras-vae 0.1.0 kept β in the Sampling layer: a checkpoint whose KL layer has no
    variables of its own keeps the configured β; one that has them restores them."""
    kl_term = KLTerm(beta=0.7)
    kl_term.load_own_variables({})
    assert float(kl_term.beta.numpy()) == pytest.approx(0.7)
    kl_term.load_own_variables({"beta": np.float32(0.25)})
    assert float(kl_term.beta.numpy()) == pytest.approx(0.25)


def test_free_bits_charge_each_level_at_least_their_allowance():
    """Per level the objective charges β·max(λ, batch-mean KL): a level under λ nats adds
    λ and passes no gradient back; the KL returned (and reported) stays the true one.
    Without free bits a negative mean (a VampPrior's estimate can be) is charged as is."""
    kl = tf.Variable([[0.5, 1.5], [3.0, 5.0]])  # [levels, examples]: means 1 and 4
    kl_term = KLTerm(beta=0.5, free_bits=2.0)
    with tf.GradientTape() as tape:
        per_example = kl_term(kl)
        charged = kl_term.losses[0]
    np.testing.assert_allclose(per_example.numpy(), [3.5, 6.5])
    assert float(charged) == pytest.approx(0.5 * (2.0 + 4.0))
    np.testing.assert_allclose(tape.gradient(charged, kl).numpy(), [[0, 0], [0.25, 0.25]])
    negative = KLTerm(beta=1.0)
    negative(tf.constant([-1.0, -2.0]))
    assert float(negative.losses[0]) == pytest.approx(-1.5)


@pytest.mark.parametrize("levels", [3, (4, 3)], ids=["one level", "hierarchy"])
@pytest.mark.parametrize("kind", ["plain", "vamp", "conditional"])
def test_every_layer_is_built_with_the_model(levels, kind):
    """Under a tf.distribute strategy Keras builds a model that is not whole by calling it
    on the data's x alone, which for a conditional model is its images without labels."""
    settings = {"plain": {}, "vamp": {"prior": "vamp", "pseudo_inputs": 5},
                "conditional": {"conditional": True, "label_names": ("a", "b")}}[kind]
    vae = VAE(ModelConfig(latent_dim=levels, hidden_dims=(16,), likelihood="bernoulli",
                               image_shape=(8, 8, 1), **settings))
    assert [layer.name for layer in vae._flatten_layers() if not layer.built] == []
