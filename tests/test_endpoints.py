"""Specification of export/endpoints.py: the named, shaped functions every format is made
from."""

from __future__ import annotations

import numpy as np

from export.endpoints import decoder_endpoint, encoder_endpoint, run_keras


def test_endpoints_name_their_inputs_and_outputs_with_a_dynamic_batch(small_export):
    vae = small_export["vae"]
    latent_dim = vae.config.latent_dim
    decoder = decoder_endpoint(vae.latent_decoder(), vae.likelihood, "decode_latent")
    encoder = encoder_endpoint(vae.encoder)
    assert decoder.describe() == {"inputs": {"z": [-1, latent_dim]},
                                  "outputs": {"image": [-1, 28, 28, 1],
                                              "logits": [-1, 28, 28, 1]}}
    assert encoder.describe() == {"inputs": {"image": [-1, 28, 28, 1]},
                                  "outputs": {"z_mean": [-1, latent_dim],
                                              "z_log_var": [-1, latent_dim]}}
    for batch in (1, 3):
        decoded = run_keras(decoder, np.zeros((batch, latent_dim), np.float32))
        assert decoded["image"].shape == (batch, 28, 28, 1)
        np.testing.assert_allclose(decoded["image"], 1 / (1 + np.exp(-decoded["logits"])),
                                   rtol=1e-6)


def test_every_decoder_samples_from_the_one_contract(small_export, vamp_export):
    """N(0, I) and VampPrior decoders take the same inputs (the VampPrior's picks its
    component too), and at temperature 1 an N(0, I) decoder's noise is its z."""
    small, vamp = small_export["vae"], vamp_export["vae"]
    sampler = decoder_endpoint(small.generator(), small.likelihood)
    assert sampler.describe()["inputs"] == {"noise": [-1, 6], "temperature": [-1]}
    assert decoder_endpoint(vamp.generator(), vamp.likelihood).describe()["inputs"] == {
        "noise": [-1, vamp.config.latent_dim], "temperature": [-1], "component_draw": [-1]}
    noise = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    latent = decoder_endpoint(small.latent_decoder(), small.likelihood, "decode_latent")
    drawn = run_keras(sampler, {"noise": noise, "temperature": np.ones(4, np.float32)})
    np.testing.assert_allclose(drawn["logits"], run_keras(latent, noise)["logits"], rtol=1e-6)
    cooled = run_keras(sampler, {"noise": noise, "temperature": np.full(4, 0.5, np.float32)})
    np.testing.assert_allclose(cooled["logits"], run_keras(latent, noise / 2)["logits"],
                               rtol=1e-5, atol=1e-5)
