"""Specification of export/endpoints.py: the named, shaped functions every format is made
from."""

from __future__ import annotations

import numpy as np

from export.endpoints import decoder_endpoint, encoder_endpoint, prior_endpoint, run_keras


def test_endpoints_name_their_inputs_and_outputs_with_a_dynamic_batch(small_export):
    vae = small_export["vae"]
    latent_dim = vae.config.latent_dim
    decoder, encoder = decoder_endpoint(vae.decoder, vae.likelihood), encoder_endpoint(vae.encoder)
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


def test_only_a_vamp_prior_model_has_a_prior_endpoint(small_export, vamp_export):
    assert prior_endpoint(small_export["vae"]) is None
    endpoint = prior_endpoint(vamp_export["vae"])
    latent_dim = vamp_export["vae"].config.latent_dim
    assert endpoint.describe() == {"inputs": {"index": [-1]},
                                   "outputs": {"means": [-1, latent_dim],
                                               "log_vars": [-1, latent_dim]}}
