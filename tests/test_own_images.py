"""End to end on people's own colour images: a folder of RGB files with class folders is
trained on with the spatial network, conditional on the folders' classes, and the logistic
likelihood, exported in every format (the one test that exports a spatial model), and
sampled on the edge in colour, the draw equal to the Keras model's."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from export.onnx_model import read_metadata
from keras_vae.run.cli import run_command
from keras_vae.train import main
from serving import vae_decoder, vae_draws
from tests.conftest import copy_edge_files

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _colour_folder(path, per_class: int = 40, size=(20, 16)) -> None:
    """Two classes of noisy 20×16 RGB pictures: reddish and bluish squares."""
    rng = np.random.default_rng(0)
    for name, colour in (("red", (200, 40, 40)), ("blue", (40, 60, 210))):
        (path / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (*size, 3))
            top, left = rng.integers(0, 8, 2)
            image[top:top + 10, left:left + 8] = colour
            Image.fromarray(image.astype(np.uint8)).save(path / name / f"{i}.png")


def test_a_folder_of_rgb_images_trains_exports_and_samples_in_colour(tmp_path):
    _colour_folder(tmp_path / "pictures")
    run_dir = str(tmp_path / "run")
    assert run_command(main, "keras_vae.train", [
        "--dataset", f"folder:{tmp_path / 'pictures'}", "--arch", "spatial", "--conditional",
        "--epochs", "6", "--batch-size", "16", "--latent-dim", "2", "--hidden-dims", "8",
        "--mixture-components", "3", "--learning-rate", "0.005", "--no-jit", "--verbose",
        "0", "--memory-budget-mb", "0", "--out", run_dir]) == 0
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["image_shape"] == [20, 16, 3] and summary["likelihood"] == "logistic"
    assert summary["config"]["model"]["arch"] == "spatial"
    assert len(summary["test_kl_per_level"]) == 3 and summary["skipped_updates"] == 0
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert losses[-1] < losses[0]
    assert summary["config"]["model"]["label_names"] == ["blue", "red"]
    assert summary["config"]["model"]["mixture_components"] == 3
    # Streamed from a memory-mapped file (budget 0), which vanished with its mapping.
    assert summary["config"]["memory_budget_mb"] == 0
    assert not [f for f in os.listdir(run_dir) if f.startswith("keras-vae-images-")]
    assert 0 < summary["test_bits_per_dim"] < 8  # a real likelihood of 8-bit pixels
    samples = Image.open(os.path.join(run_dir, summary["artifacts"]["samples_png"]))
    assert samples.mode == "RGB"

    decoder = os.path.join(run_dir, summary["artifacts"]["decoder_onnx"])
    metadata = read_metadata(decoder)
    assert json.loads(metadata["image_shape"]) == [20, 16, 3]
    assert metadata["likelihood"] == "logistic"
    assert json.loads(metadata["label_names"]) == ["blue", "red"]
    outputs = summary["export"]["parity_vs_keras"]
    assert set(outputs) >= {"decoder_onnx", "decoder_saved_model", "decoder_tflite"}

    session = ort.InferenceSession(decoder)
    assert [i.name for i in session.get_inputs()] == ["noise", "temperature", "label",
                                                      "component_draw"]
    vae = keras.models.load_model(os.path.join(run_dir, "best.keras"))
    noise = vae_draws.seeded_noise(4, sum(vae.config.levels), seed=3)
    labels = np.array([0, 1, 0, 1])
    draws = vae_draws.component_draws(["label", "component_draw"], 4, seed=3)
    inputs = {"noise": noise, "temperature": np.full(4, 0.8, np.float32), "label": labels,
              "component_draw": draws}
    np.testing.assert_allclose(vae_decoder.decode(session, noise, labels, temperature=0.8,
                                             component_draw=draws),
                               vae.sample_images(inputs), atol=1e-4)

    edge = os.environ.get("EDGE_PYTHON", sys.executable)
    copy_edge_files(tmp_path)
    done = subprocess.run([edge, "sample.py", decoder, "--label", "red", "--n", "4",
                           "--out", "grid.png"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    grid = Image.open(tmp_path / "grid.png")
    assert grid.mode == "RGB" and grid.size == (2 * (2 * 18 - 2), 2 * (2 * 22 - 2))


def test_training_on_a_folder_with_hostile_files_is_one_line_and_writes_nothing(tmp_path):
    """The command as a user runs it, on forty PNGs plus a pixel bomb, a text-chunk bomb
    and a named pipe: exit 1, one line on stderr naming both bad images, no traceback or
    library warning, no run directory, within a bound that proves nothing hung."""
    from tests import hostile_images

    folder = tmp_path / "photos"
    folder.mkdir()
    hostile_images.ordinary_pngs(folder)
    hostile_images.png_declaring(folder / "bomb.png", 16_000, 16_000)
    hostile_images.png_with_text_bomb(folder / "text.png")
    hostile_images.named_pipe(folder / "pipe.png")
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "keras_vae.train", "--dataset",
                           f"folder:{folder}", "--out", str(run)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keras_vae.train: error: folder:")
    assert "bomb.png: 16000×16000 is 256.0 million pixels" in lines[0]
    assert "text.png: cannot read this image" in lines[0]
    assert "pipe.png" in done.stdout and not run.exists()
