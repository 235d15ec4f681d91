"""Specification of keras_vae/measure/scoring.py and export/scorer.py: an anomaly score that is a
pure function of the image, the same in every format."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf

from export.endpoints import run_keras
from export.onnx_model import read_metadata, run_onnx
from export.saved_model import run_saved_model
from export.scorer import SCORE_TOLERANCE, parity_images, scorer_endpoint
from keras_vae.measure import scoring
from keras_vae.measure.scoring import Scorer, auroc, predictive_code_bits
from tests.conftest import strokes


def test_auroc_is_the_chance_that_an_outside_image_scores_higher():
    """Against the pairwise definition, ties counting half."""
    rng = np.random.default_rng(0)
    inside, outside = rng.integers(0, 20, 300), rng.integers(5, 25, 200)
    pairs = (outside[:, None] > inside[None]).mean() + 0.5 * (
        outside[:, None] == inside[None]).mean()
    assert auroc(inside, outside) == pytest.approx(pairs, abs=1e-12)
    assert auroc(inside, inside + 100) == 1.0 and auroc(inside + 100, inside) == 0.0


def test_the_predictive_coder_charges_structure_under_a_bit_and_noise_a_byte_a_pixel():
    flat = np.full((1, 28, 28, 1), 90, np.uint8)
    ramp = np.tile(np.arange(28, dtype=np.uint8)[None, :, None], (28, 1, 1))[None] * 9
    noise = np.random.default_rng(0).integers(0, 256, (1, 28, 28, 1), dtype=np.uint8)
    bits = [float(predictive_code_bits(x)[0]) / 784 for x in (flat, ramp, noise)]
    # predicted exactly but for the edges, whose residuals the one fitted θ overcharges
    # (its misfit: docs/scoring.md)
    assert bits[0] < 2 and bits[1] < 2
    assert 7.5 < bits[2] < 9.5  # 8 bits a pixel, plus the geometric code's misfit


def test_a_score_is_a_pure_function_of_the_image(small_export):
    """The same image gives the same score alone, in any batch, in every call; the
    noise is the documented seed's."""
    scorer = Scorer(small_export["vae"], 4, small_export["calibration"])
    function = scorer.function()
    images = np.concatenate([strokes(6, seed=3), 255 - strokes(2, seed=4)])
    together = {k: np.asarray(v) for k, v in function(tf.constant(images)).items()}
    again = {k: np.asarray(v) for k, v in function(tf.constant(images)).items()}
    alone = [np.asarray(function(tf.constant(images[i:i + 1]))["score"])[0]
             for i in range(len(images))]
    np.testing.assert_array_equal(together["score"], again["score"])
    np.testing.assert_allclose(together["score"], alone, atol=1e-5)
    np.testing.assert_array_equal(scorer.noise, np.random.default_rng(
        scoring.SCORE_SEED).standard_normal((4, 6)).astype(np.float32))
    assert together["pixel_map"].shape == (8, 28, 28)
    np.testing.assert_allclose(together["pixel_map"].sum(axis=(1, 2)),
                               _reconstruction_nll(small_export["vae"], images), rtol=1e-4)


def _reconstruction_nll(vae, images):
    pixels = images.astype(np.float32) / 255
    z_mean, _ = vae.encode(pixels)
    return np.asarray(vae.likelihood.neg_log_prob(pixels, vae.decode(z_mean)))


def test_the_threshold_flags_the_asked_share_of_the_calibration_images(small_export):
    """Calibrated on images it has not seen, the threshold flags about `fpr` of new
    in-distribution images, and the score standardizes both terms on them."""
    vae = small_export["vae"]
    calibration = scoring.calibrate(Scorer(vae, 4), _speckled(strokes(400, seed=5)), fpr=0.05)
    assert len(calibration.validation_scores) == 400
    assert np.mean(np.asarray(calibration.validation_scores) > calibration.threshold
                   ) == pytest.approx(0.05, abs=0.005)
    scorer = Scorer(vae, 4, calibration)
    fresh = scoring.in_batches(scorer.function(), _speckled(strokes(400, seed=6)), 100)
    assert 0.0 < fresh["flagged"].mean() < 0.15
    z = (fresh["neg_log_likelihood"] - calibration.nll_mean) / calibration.nll_std
    assert abs(z.mean()) < 0.5 and 0.5 < z.std() < 2.0
    stored = scoring.Calibration.from_dict(calibration.to_dict())
    assert stored == calibration


def _speckled(images: np.ndarray) -> np.ndarray:
    """The images with seeded speckles, so that no two are alike (ties would put several
    scores on the threshold)."""
    speckles = np.random.default_rng(0).integers(0, 40, images.shape)
    return np.clip(images.astype(int) + np.where(images > 0, -speckles, speckles), 0, 255
                   ).astype(np.uint8)


def test_an_upside_down_image_scores_its_other_views_likelier(small_export):
    """The other-views term is −log p(x) − min over the flips and the half turn: zero
    or below for an image whose likeliest view is itself, and the drop in −log p for an
    image whose flip the model prefers."""
    scorer = Scorer(small_export["vae"], 4, small_export["calibration"])
    images = strokes(8, seed=9)
    terms = {k: np.asarray(v) for k, v in scorer.terms(tf.constant(images)).items()}
    views = [np.asarray(scorer.neg_log_likelihood(view(tf.constant(images, tf.float32) / 255)))
             for view in scoring.VIEWS.values()]
    np.testing.assert_allclose(terms["view"], terms["neg_log_likelihood"]
                               - np.minimum.reduce(views), rtol=1e-5, atol=1e-3)


def test_the_exported_scorer_gives_keras_numbers_in_every_format(small_export):
    """SavedModel and ONNX, on the export's own check images and fresh ones: the score
    within `SCORE_TOLERANCE`, the same flags, the calibration in the ONNX metadata."""
    paths, calibration = small_export["paths"], small_export["calibration"]
    assert {"scorer_saved_model", "scorer_onnx"} <= set(paths)
    for measured in small_export["scorer"].values():
        assert measured["score"] <= SCORE_TOLERANCE and measured["flagged_differ"] == 0
    endpoint = scorer_endpoint(Scorer(small_export["vae"], 4, calibration))
    images = np.concatenate([strokes(5, seed=11), parity_images(np.zeros((2, 28, 28, 1)))])
    expected = run_keras(endpoint, images)
    for outputs in (run_saved_model(paths["scorer_saved_model"], images),
                    run_onnx(paths["scorer_onnx"], images)):
        scaled = np.abs(outputs["score"] - expected["score"]) / np.maximum(
            1.0, np.abs(expected["score"]))
        assert scaled.max() <= SCORE_TOLERANCE
        np.testing.assert_array_equal(outputs["flagged"], expected["flagged"])
    metadata = read_metadata(paths["scorer_onnx"])
    assert metadata["role"] == "scorer" and float(metadata["threshold"]) == calibration.threshold
    session = ort.InferenceSession(paths["scorer_onnx"], providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [("images", "tensor(uint8)")]


def test_the_scorer_is_verified_with_each_file_opened_once_whatever_its_batches(
        small_export, monkeypatch):
    """A file opened per batch kept its memory each time: 13.5 GB for a 64×64 spatial
    scorer. Batches of 2 open each format once and measure what one batch measures."""
    import export.scorer as exported

    paths, vae = small_export["paths"], small_export["vae"]
    endpoint = scorer_endpoint(Scorer(vae, 4, small_export["calibration"]))
    images = np.concatenate([strokes(4, seed=12), parity_images(np.zeros((2, 28, 28, 1)))])
    opened = []
    for name in ("onnx_function", "saved_model_function"):
        original = getattr(exported, name)
        monkeypatch.setattr(exported, name, lambda path, original=original: (
            opened.append(path), original(path))[1])
    in_batches = exported.scorer_parity(endpoint, paths, images, batch_size=2)
    assert sorted(opened) == sorted([paths["scorer_saved_model"], paths["scorer_onnx"]])
    at_once = exported.scorer_parity(endpoint, paths, images, batch_size=len(images))
    for key, measured in in_batches.items():
        assert measured["flagged_differ"] == at_once[key]["flagged_differ"] == 0
        assert measured["score"] == pytest.approx(at_once[key]["score"], abs=1e-5)


def test_a_conditional_model_has_no_scorer():
    from keras_vae.config import ModelConfig
    from keras_vae.model.vae import VAE

    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=2, hidden_dims=(16,),
                          conditional=True, label_names=("a", "b", "c"), class_components=1))
    with pytest.raises(ValueError, match="unconditional model"):
        Scorer(vae)


def test_the_development_sets_are_what_docs_scoring_says(tmp_path):
    """Upside-down and inverted copies of the own images, uniform noise, seeded photo
    patches of the model's size and channels (from any folder of JPEGs), digits as given."""
    from PIL import Image

    from keras_vae.measure.ood_sets import development_sets

    rng = np.random.default_rng(0)
    os.makedirs(tmp_path / "photos" / "nature")
    for i, size in enumerate(((400, 300), (320, 480))):
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(
            tmp_path / "photos" / "nature" / f"{i}.jpg")
    inside = strokes(10, seed=1)
    digits = np.full((30, 28, 28, 1), 255, np.uint8)
    sets = development_sets(inside, digits, 10, photo_folder=str(tmp_path / "photos"))
    assert list(sets) == ["digits", "upside-down", "inverted", "noise", "photos"]
    assert all(images.shape == (10, 28, 28, 1) and images.dtype == np.uint8
               for images in sets.values())
    np.testing.assert_array_equal(sets["upside-down"], inside[:, ::-1])
    np.testing.assert_array_equal(sets["inverted"], 255 - inside)
    assert abs(sets["noise"].mean() - 127.5) < 5
    again = development_sets(inside, None, 10, photo_folder=str(tmp_path / "photos"))
    np.testing.assert_array_equal(again["photos"], sets["photos"])  # seeded
    assert "digits" not in again and sets["photos"].std() > 10
