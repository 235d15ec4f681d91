"""Specification of keras_vae/config/: the run's one record validates itself and holds
every default, so no command supplies its own."""

from __future__ import annotations

import dataclasses

import pytest

from keras_vae.config import (
    DEFAULT_EIGHT_BIT_LEVELS,
    DEFAULT_IWAE_K,
    DEFAULT_LATENT_DIM,
    DEFAULT_PSEUDO_INPUTS,
    ModelConfig,
    TrainConfig,
)
from keras_vae.run.cli import UsageError


def test_defaults_of_iwae_k_and_pseudo_inputs_follow_the_objective_and_prior():
    assert ModelConfig(objective="iwae").iwae_k == DEFAULT_IWAE_K == 5
    assert ModelConfig(prior="vamp").pseudo_inputs == DEFAULT_PSEUDO_INPUTS == 500
    assert ModelConfig(prior="vamp", arch="spatial").pseudo_inputs == 50  # a pass each
    assert ModelConfig(prior="vamp", arch="spatial", pseudo_inputs=7).pseudo_inputs == 7
    plain = ModelConfig(prior="normal")
    assert (plain.iwae_k, plain.pseudo_inputs) == (1, 0)


def _settled(pixels: str, **flags) -> tuple:
    model = TrainConfig(model=ModelConfig(**flags)).for_data((28, 28, 1), pixels,
                                                             label_names=("a", "b")).model
    return model.latent_dim, model.prior, model.pseudo_inputs


def test_latent_size_and_prior_default_by_the_pixels_and_conditional():
    """The defaults docs/results.md measured to draw the samples nearest the data: for
    8-bit images the hierarchy of 32 and 16 with the VampPrior on its top level, or,
    conditional (the VampPrior takes no labels), under the class prior; for binary ones
    N(0, I) and 20. A setting given is kept, and the other follows it."""
    assert TrainConfig().model.latent_dim is None and TrainConfig().model.levels == ()
    assert TrainConfig().model.prior is None
    assert _settled("8-bit") == (DEFAULT_EIGHT_BIT_LEVELS, "vamp", DEFAULT_PSEUDO_INPUTS) == (
        (32, 16), "vamp", 500)
    assert _settled("binary") == (DEFAULT_LATENT_DIM, "normal", 0) == (20, "normal", 0)
    assert _settled("8-bit", conditional=True) == ((32, 16), "normal", 0)
    assert _settled("8-bit", latent_dim=(6, 3)) == ((6, 3), "vamp", 500)
    assert _settled("8-bit", latent_dim=8) == (8, "vamp", 500)
    assert _settled("8-bit", prior="normal") == ((32, 16), "normal", 0)
    assert _settled("8-bit", latent_dim=8, conditional=True) == (8, "normal", 0)
    assert _settled("binary", pseudo_inputs=50) == (20, "vamp", 50)  # it asks for vamp
    assert _settled("binary", latent_dim=(6, 3)) == ((6, 3), "normal", 0)
    with pytest.raises(UsageError, match="--pseudo-inputs applies to --prior vamp"):
        _settled("8-bit", prior="normal", pseudo_inputs=50)
    with pytest.raises(UsageError, match="--conditional does not support --prior vamp"):
        ModelConfig(pseudo_inputs=50, conditional=True)  # before any data
    binarized = TrainConfig(dynamic_binarization=True).for_data((28, 28, 1), "8-bit")
    assert (binarized.model.latent_dim, binarized.model.prior) == (20, "normal")
    assert ModelConfig(likelihood="logistic", latent_dim=[5, 3]).levels == (5, 3)


def test_every_vampprior_decoder_picks_its_component_from_a_draw():
    """One level or several, a VampPrior's generator takes `component_draw` (its mixture
    is in the graph); an N(0, I) model's takes none."""
    for levels in (8, (8, 4)):
        assert ModelConfig(likelihood="bernoulli", prior="vamp",
                           latent_dim=levels).takes_component_draw
    assert not ModelConfig(likelihood="bernoulli", prior="normal").takes_component_draw


@pytest.mark.parametrize("settings, message", [
    ({"iwae_k": 5}, "--iwae-k applies to --objective iwae"),
    ({"prior": "normal", "pseudo_inputs": 50}, "--pseudo-inputs applies to --prior vamp"),
    ({"prior": "vamp", "pseudo_inputs": 0}, "pseudo_inputs must be at least 1"),
    ({"arch": "rnn"}, "arch 'rnn' is not one of mlp, gated, conv"),
    ({"latent_dim": 0}, "every latent size must be at least 1"),
    ({"hidden_dims": (64, 0)}, "every hidden width must be at least 1"),
    ({"beta": -1.0}, "beta must be at least 0"),
    ({"free_bits": -1.0}, "free_bits must be at least 0"),
    ({"objective": "iwae", "free_bits": 2.0}, "--free-bits applies to --objective elbo"),
    ({"dropout": 1.0}, "dropout must be at least 0 and below 1, not 1.0"),
    ({"image_shape": (28, 28)}, "image_shape must be"),
    ({"likelihood": "bernoulli", "mixture_components": 3}, "applies to --likelihood logistic"),
    ({"likelihood": "logistic", "mixture_components": 0}, "mixture_components must be"),
    ({"conditional": True, "prior": "vamp"}, "--conditional does not support --prior vamp"),
    ({"likelihood": "gaussian"}, "likelihood 'gaussian' is not one of auto, bernoulli"),
])
def test_a_model_config_refuses_what_cannot_be_trained(settings, message):
    with pytest.raises(UsageError, match=message):
        ModelConfig(**settings)


@pytest.mark.parametrize("settings, message", [
    ({"dataset": "folder:"}, "add the path after 'folder:'"),
    ({"image_size": (32, 0)}, "image_size must be"),
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"learning_rate": 0.0}, "learning_rate must be above 0"),
    ({"strategy": "tpu"}, "strategy 'tpu' is not one of"),
])
def test_a_train_config_refuses_what_cannot_be_trained(settings, message):
    with pytest.raises(UsageError, match=message):
        TrainConfig(**settings)


def test_the_data_complete_the_record_and_auto_picks_the_likelihood_that_fits():
    request = TrainConfig(dataset="npz:x.npz")
    assert (request.model.likelihood, request.model.settled) == ("auto", False)
    gray = request.for_data((32, 32, 3), "8-bit", ("cat", "dog"))
    assert gray.model.image_shape == (32, 32, 3) and gray.model.label_names == ("cat", "dog")
    assert (gray.model.likelihood, gray.model.mixture_components) == ("logistic", 5)
    assert gray.pixel_kind == "8-bit" and gray.measures_likelihood
    binary = request.for_data((28, 28, 1), "binary")
    assert (binary.model.likelihood, binary.model.mixture_components) == ("bernoulli", 0)
    binarized = dataclasses.replace(request, dynamic_binarization=True).for_data(
        (28, 28, 1), "8-bit")
    assert binarized.model.likelihood == "bernoulli" and binarized.measures_likelihood
    bernoulli = TrainConfig(model=ModelConfig(likelihood="bernoulli"))
    assert not bernoulli.for_data((28, 28, 1), "8-bit").measures_likelihood
    auto = TrainConfig(model=ModelConfig(mixture_components=3))
    assert auto.for_data((8, 8, 1), "8-bit").model.mixture_components == 3
    with pytest.raises(UsageError, match="--mixture-components applies to --likelihood logi"):
        auto.for_data((8, 8, 1), "binary")


@pytest.mark.parametrize("settings, pixels, message", [
    ({"dynamic_binarization": True}, "binary", "already binary"),
    ({"model": ModelConfig(likelihood="logistic")}, "binary", "use --likelihood bernoulli"),
    ({"model": ModelConfig(conditional=True)}, "binary", "--conditional needs labelled data"),
])
def test_settings_that_do_not_fit_the_data_are_refused(settings, pixels, message):
    with pytest.raises(UsageError, match=message):
        TrainConfig(**settings).for_data((28, 28, 1), pixels)


def test_the_seed_is_stored_once_and_read_through_the_run():
    config = TrainConfig(model=ModelConfig(seed=7))
    assert config.seed == 7
    stored = config.to_dict()
    assert "seed" not in stored and stored["model"]["seed"] == 7


def test_a_config_round_trips_through_its_dict_form():
    config = TrainConfig(model=ModelConfig(hidden_dims=(300, 300), prior="vamp",
                                           objective="iwae", iwae_k=10),
                         dataset="fashion_mnist", max_examples=100, out="runs/x",
                         image_size=(20, 24)).for_data((20, 24, 1), "8-bit", ("a", "b"))
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["model"]["hidden_dims"] == [300, 300]


def test_xla_compiles_the_training_step_of_the_families_it_speeds_up():
    assert TrainConfig().jit_compile is True
    assert TrainConfig(model=ModelConfig(arch="conv")).jit_compile is False
    assert TrainConfig(model=ModelConfig(arch="conv"), jit_compile=True).jit_compile is True


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 3


def test_a_conditional_model_bounds_log_p_of_x_given_y_over_its_classes():
    conditional = ModelConfig(conditional=True, label_names=("cat", "dog"))
    assert (conditional.losses_bound, conditional.classes) == ("log p(x|y)", 2)
    assert ModelConfig().losses_bound == "log p(x)"


def test_a_record_of_keras_vae_0_1_0_reads_as_the_same_settings():
    current = TrainConfig(dataset="fashion_mnist").for_data((28, 28, 1), "8-bit")
    old = {**current.to_dict(), "likelihood": "auto", "pixels": "8-bit"}
    del old["pixel_kind"]
    assert TrainConfig.from_dict(old) == current


def test_conditional_models_default_to_a_mixture_and_older_records_keep_one_gaussian():
    """A record written before `class_components` existed describes one Gaussian per
    class, whatever today's default; its checkpoint's tables have that shape."""
    settings = {"conditional": True, "label_names": ("cat", "dog"), "likelihood": "bernoulli"}
    assert ModelConfig(**settings).class_components == 50
    assert ModelConfig(likelihood="bernoulli").class_components == 1
    old = ModelConfig(**settings).to_dict()
    del old["class_components"]
    assert ModelConfig.from_dict(old).class_components == 1
    assert not ModelConfig(**settings, class_components=1).takes_component_draw
    assert ModelConfig(**settings).takes_component_draw


def test_without_epochs_the_run_trains_at_least_3000_updates():
    from keras_vae.config import default_epochs

    assert default_epochs(50_000, 128) == 10  # 391 updates an epoch: 3,910
    assert default_epochs(1152, 128) == 334  # 9 an epoch: 3,006
    assert default_epochs(None, 128) == 10
    settled = TrainConfig().for_data((28, 28, 1), "binary", train_size=1152)
    assert settled.epochs == 334
    assert TrainConfig(epochs=3).for_data((28, 28, 1), "binary", train_size=1152).epochs == 3


@pytest.mark.parametrize("arch, shape, batch", [
    ("mlp", (64, 64, 3), 128),
    ("spatial", (28, 28, 1), 64),  # 83 fit: 64
    ("spatial", (32, 32, 3), 64),
    ("spatial", (64, 64, 3), 16),
    ("spatial", (20, 16, 3), 128),  # 204 fit, at most the default
    ("spatial", (512, 512, 3), 1),
])
def test_a_spatial_models_default_batch_follows_its_pixels(arch, shape, batch):
    settled = TrainConfig(model=ModelConfig(arch=arch)).for_data(shape, "8-bit",
                                                                 train_size=1152)
    assert settled.batch_size == batch
    assert settled.epochs == max(10, -(-3000 // -(-1152 // batch)))  # the default length
    chosen = TrainConfig(model=ModelConfig(arch=arch), batch_size=7)
    assert chosen.for_data(shape, "8-bit").batch_size == 7
