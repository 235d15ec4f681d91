"""Specification of conditional generation (`--conditional`), from the command line to TF
Serving and the edge: a label goes in, and the picture of that class comes out of every
format.

The data are four classes of 16×16 binary pictures, each class noisy copies of its own
random prototype with a line drawn across it at a random row, so "the picture shows the
class" can be checked exactly (it is nearest to that class's prototype) and z has
something the label does not say: the row.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from PIL import Image

from export.endpoints import decoder_endpoint, encoder_endpoint, run_keras
from export.litert import run_tflite
from export.onnx_model import read_metadata, run_onnx, table_lookups
from export.saved_model import run_saved_model
from keras_vae.data.pipeline import datasets_for, splits_for
from keras_vae.evaluate import format_report
from keras_vae.measure.evaluation import evaluate
from keras_vae.measure.nll import importance_nll
from keras_vae.run.cli import run_command
from keras_vae.run.layout import load_checkpoint, load_run
from serving import tf_serving_client
from serving.vae_draws import component_draws, seeded_noise
from serving.vae_pictures import LABEL_MARGIN, UPSCALE
from tests.conftest import copy_edge_files
from tests.tf_serving_double import TfServingDouble

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ("ring", "cross", "bar", "dot")
SIDE = 16


def _prototypes() -> np.ndarray:
    return np.random.default_rng(0).random((len(NAMES), SIDE, SIDE, 1)) < 0.25


def _class_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bool [N, SIDE, SIDE, 1]: each label's prototype, 5 % of its pixels flipped, and one
    whole row, drawn at random, set."""
    images = _prototypes()[labels] ^ (rng.random((len(labels), SIDE, SIDE, 1)) < 0.05)
    images[np.arange(len(labels)), rng.integers(0, SIDE, len(labels))] = True
    return images


def _write_classes(path: str, examples: int = 2000) -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, len(NAMES), examples)
    images = _class_images(labels, rng)
    np.savez(path, images=images.astype(np.uint8) * 255, labels=labels,
             label_names=np.array(NAMES))


def _nearest_prototype(images: np.ndarray) -> np.ndarray:
    distances = np.abs(images[:, None] - _prototypes()[None].astype(np.float32))
    return distances.reshape(len(images), len(NAMES), -1).sum(-1).argmin(1)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """One real conditional training run with its export: {"dir", "summary", "vae"}."""
    from keras_vae.train import main

    base = tmp_path_factory.mktemp("conditional")
    _write_classes(str(base / "classes.npz"))
    run_dir = str(base / "run")
    assert run_command(main, "keras_vae.train", [
        "--dataset", f"npz:{base / 'classes.npz'}", "--conditional", "--epochs", "10",
        "--batch-size", "64", "--latent-dim", "2", "--hidden-dims", "384", "--no-jit",
        "--learning-rate", "0.003", "--verbose", "0", "--out", run_dir]) == 0
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    vae = load_checkpoint(run_dir)
    return {"dir": run_dir, "summary": summary, "vae": vae}


def _artifact(run, key: str) -> str:
    return os.path.join(run["dir"], run["summary"]["artifacts"][key])


def test_the_run_is_a_bound_on_log_p_of_x_given_its_label(run):
    summary = run["summary"]
    assert summary["losses_bound"] == "log p(x|y)"
    assert summary["config"]["model"]["conditional"] is True
    assert summary["config"]["model"]["label_names"] == list(NAMES)


def test_the_class_prior_is_fitted_to_the_codes_and_the_checkpoint_holds_the_fit(run):
    fit = run["summary"]["class_prior_fit"]
    vae, config = load_run(run["dir"])  # its seed state is the one both losses started at
    splits = splits_for(config)
    assert fit["images"] == len(splits["train"])
    assert fit["mean_log_prior_after"] > fit["mean_log_prior_before"]
    assert fit["kept"] is True and fit["val_loss_after"] < fit["val_loss_before"]
    _, val_data, _ = datasets_for(config, splits)
    loss = vae.evaluate(val_data, return_dict=True, verbose=0)["loss"]
    assert loss == pytest.approx(fit["val_loss_after"], rel=1e-5)


def test_samples_png_has_one_named_row_per_class_and_no_manifold(run):
    samples = Image.open(_artifact(run, "samples_png"))
    cell = SIDE + 2
    assert samples.height == UPSCALE * (len(NAMES) * cell - 2)
    assert samples.width >= LABEL_MARGIN + UPSCALE * (10 * cell - 2)
    margin = np.asarray(samples.convert("L"))[:, :LABEL_MARGIN // 2]
    assert (margin < 128).any()  # the class names are written there
    assert "manifold_png" not in run["summary"]["artifacts"]
    assert "latent_scatter_png" in run["summary"]["artifacts"]


def test_changing_only_the_label_changes_the_picture_to_that_class(run):
    z = seeded_noise(50, 2, seed=3)
    by_label = [np.asarray(run["vae"].mean_image(z, np.full(50, label)))
                for label in range(len(NAMES))]
    for label, images in enumerate(by_label):
        assert (_nearest_prototype(images) == label).mean() >= 0.75, NAMES[label]
        others = [np.abs(images - other).mean() for other in by_label if other is not images]
        assert min(others) > 0.1


def test_the_conditional_elbo_and_iwae_bounds_order_as_bounds_on_log_p_x_given_y(run):
    vae, rng = run["vae"], np.random.default_rng(5)
    labels = rng.integers(0, len(NAMES), 100)
    images = _class_images(labels, rng).astype(np.float32)
    neg_elbo = vae.evaluate(images, labels, batch_size=100, return_dict=True, verbose=0)
    by_k = [importance_nll(vae, images, k, seed=1, labels=labels).mean()
            for k in (1, 10, 1000)]
    assert by_k[0] > by_k[1] > by_k[2] and by_k[2] < neg_elbo["loss"]
    wrong = importance_nll(vae, images, 1000, seed=1, labels=(labels + 1) % len(NAMES))
    assert wrong.mean() > by_k[2] + 10  # the label carries real information about x


def test_evaluate_names_the_nll_given_the_label_and_judges_the_sample_classes(run, tmp_path):
    copy = str(tmp_path / "run")
    shutil.copytree(run["dir"], copy)
    result = evaluate(copy, k=20, max_examples=200)
    assert result["examples"] == 200  # of the 400 test images
    assert result["classifier"]["train_examples"] == 1200  # the whole training split
    assert "test_nll" not in result and result["losses_bound"] == "log p(x|y)"
    assert result["test_nll_given_label"] < result["test_neg_elbo"]
    assert result["classifier"]["test_accuracy"] >= 0.95
    assert set(result["sample_class_accuracy"]) == set(NAMES)
    assert result["mean_sample_class_accuracy"] >= 0.9
    assert 0 <= result["training_images_frechet_distance"] < result["sample_frechet_distance"]
    assert result["frechet_real_images"] == 400  # the whole test split
    assert result["sample_temperature"] == 1.0
    # The judge's own figures: per class on the real test images, whose mean is its test
    # accuracy (the classes are near balanced), and on the model's reconstructions.
    assert set(result["test_class_accuracy"]) == set(result["reconstruction_class_accuracy"]) \
        == set(NAMES)
    assert result["mean_test_class_accuracy"] == pytest.approx(
        result["classifier"]["test_accuracy"], abs=0.01)
    assert result["mean_reconstruction_class_accuracy"] >= 0.9
    assert "the classifier on the test images" in format_report(result)
    cooler = evaluate(copy, k=2, max_examples=20, sample_temperature=0.5)
    assert cooler["classifier"] == result["classifier"]  # the kept judge, not retrained
    assert cooler["sample_temperature"] == 0.5
    assert cooler["sample_frechet_distance"] != result["sample_frechet_distance"]
    assert cooler["mean_sample_class_accuracy"] >= 0.9
    assert "temperature 0.5)" in format_report(cooler)


def _noise_inputs(noise: np.ndarray, labels, temperature: float = 1.0, seed: int = 0
                  ) -> dict:
    """The decoder's inputs, with the component draws the samplers take from `seed`: the
    default conditional model has a mixture per class."""
    return {"noise": noise, "temperature": np.full(len(noise), temperature, np.float32),
            "label": np.asarray(labels, np.int64),
            "component_draw": component_draws({"component_draw"}, len(noise), seed)}


def test_every_exported_format_gives_the_keras_output_for_noise_and_label(run):
    """The exported decoder draws z from the class prior itself: noise, temperature and
    label in, the same images out of every format."""
    vae = run["vae"]
    labels = np.array([0, 1, 2, 3, -1, 4, 99], np.int64)  # the last three out of range
    inputs = _noise_inputs(seeded_noise(len(labels), 2, seed=4), labels, 0.8)
    generator = decoder_endpoint(vae.generator(), vae.likelihood)
    expected = run_keras(generator, inputs)
    for run_format, key in ((run_onnx, "decoder_onnx"), (run_saved_model, "decoder_saved_model"),
                            (run_tflite, "decoder_tflite")):
        image = run_format(_artifact(run, key), inputs)["image"]
        np.testing.assert_allclose(image, expected["image"], atol=1e-4, err_msg=key)
    int8 = run_onnx(_artifact(run, "decoder_int8_onnx"), inputs)["image"]
    assert np.abs(int8 - expected["image"]).mean() <= 0.01
    # Out of range is "no class": the all-zero one-hot vector and N(0, I), whatever the index.
    no_class = run_keras(generator, _noise_inputs(np.repeat(inputs["noise"][4:5], 3, 0),
                                                  labels[4:]))
    np.testing.assert_allclose(no_class["image"][1:], no_class["image"][[0, 0]], atol=1e-6)
    encoded = {"image": expected["image"], "label": labels}
    reference = run_keras(encoder_endpoint(vae.encoder), encoded)
    for run_format, key in ((run_onnx, "encoder_onnx"), (run_saved_model, "encoder_saved_model")):
        np.testing.assert_allclose(run_format(_artifact(run, key), encoded)["z_mean"],
                                   reference["z_mean"], atol=1e-4, err_msg=key)
    assert json.loads(read_metadata(_artifact(run, "decoder_onnx"))["label_names"]) == list(NAMES)
    assert read_metadata(_artifact(run, "decoder_onnx"))["conditional"] == "true"


def test_the_int8_decoder_keeps_the_class_prior_tables_float_and_quantizes_the_rest(run):
    fp32 = onnx.load(_artifact(run, "decoder_onnx"))
    int8 = onnx.load(_artifact(run, "decoder_int8_onnx"))
    lookups = table_lookups(fp32)
    assert len(lookups) == 3  # the mixture's means, log-variances and weight logits
    int8_ops = {node.name: node.op_type for node in int8.graph.node}
    assert all(int8_ops.get(name) == "MatMul" for name in lookups)
    matmuls = sum(node.op_type == "MatMul" for node in fp32.graph.node)
    assert list(int8_ops.values()).count("MatMulInteger") == matmuls - len(lookups)


def _edge_sample(run, tmp_path, *args) -> subprocess.CompletedProcess:
    copy_edge_files(tmp_path)
    edge = os.environ.get("EDGE_PYTHON", sys.executable)
    return subprocess.run([edge, "sample.py", _artifact(run, "decoder_onnx"), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_the_edge_sampler_draws_the_class_asked_for_by_name_or_index(run, tmp_path):
    for label in ("cross", "1"):
        done = _edge_sample(run, tmp_path, "--label", label, "--n", "16", "--seed", "2",
                            "--out", f"{label}.png")
        assert done.returncode == 0, done.stderr
        assert "class cross" in done.stdout
    by_name, by_index = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in ("cross", "1"))
    np.testing.assert_array_equal(by_name, by_index)
    expected = run["vae"].sample_images(_noise_inputs(seeded_noise(16, 2, seed=2),
                                                      np.ones(16), seed=2))
    pixels, cell = by_name[::UPSCALE, ::UPSCALE].astype(np.float32) / 255, SIDE + 2
    drawn = np.stack([pixels[r * cell:r * cell + SIDE, c * cell:c * cell + SIDE, None]
                      for r in range(4) for c in range(4)])
    assert np.abs(drawn - expected).max() <= 1 / 255 + 1e-6


def test_the_edge_sampler_draws_one_row_per_class_without_a_label(run, tmp_path):
    done = _edge_sample(run, tmp_path, "--out", "rows.png")
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "rows.png").height == UPSCALE * (len(NAMES) * (SIDE + 2) - 2)


@pytest.mark.parametrize("label", ["hat", "4", "-1"])
def test_the_edge_sampler_refuses_an_unknown_label_listing_the_known_ones(run, tmp_path,
                                                                         label):
    done = _edge_sample(run, tmp_path, "--label", label, "--out", "x.png")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "0 ring, 1 cross, 2 bar, 3 dot" in done.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_tf_serving_clients_get_the_class_names_and_draw_the_class_asked_for(run, protocol):
    base = os.path.dirname(_artifact(run, "decoder_saved_model"))
    with TfServingDouble({"vae_decoder": base}) as server:
        port = server.rest_port if protocol == "rest" else server.grpc_port
        remote = (tf_serving_client.RestClient if protocol == "rest"
                  else tf_serving_client.GrpcClient)("127.0.0.1", port)
        served = tf_serving_client.describe(remote)
        assert served["label_names"] == list(NAMES) and served["latent_dim"] == 2
        assert {"noise", "temperature", "label"} <= served["inputs"]
        noise, labels = seeded_noise(8, 2, seed=6), np.arange(8) % len(NAMES)
        image = tf_serving_client.decode(remote, noise, served["inputs"], labels, 0.7,
                                         component_draws(served["inputs"], 8, 6))
    local = run_saved_model(_artifact(run, "decoder_saved_model"),
                            _noise_inputs(noise, labels, 0.7, seed=6))
    np.testing.assert_allclose(image, local["image"], atol=1e-6)
