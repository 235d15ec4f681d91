"""Specification of keras_vae/trained.py and the package's Python face: a trained VAE as
a Keras user calls it, and docs/python.md's examples, run as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae.config import ModelConfig
from keras_vae.measure.nll import importance_nll
from keras_vae.run.callbacks import save_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = {
    "one level": ModelConfig(likelihood="bernoulli", latent_dim=4, hidden_dims=(16,)),
    "VampPrior hierarchy": ModelConfig(likelihood="logistic", latent_dim=(4, 3),
                                       hidden_dims=(16,), pseudo_inputs=3),
    "conditional hierarchy": ModelConfig(likelihood="logistic", latent_dim=(4, 3),
                                         hidden_dims=(16,), conditional=True,
                                         class_components=2, label_names=("cat", "dog")),
    "conditional one level": ModelConfig(likelihood="bernoulli", latent_dim=4,
                                         hidden_dims=(16,), conditional=True,
                                         label_names=("a", "b", "c")),
    "spatial": ModelConfig(likelihood="bernoulli", arch="spatial", latent_dim=2,
                           hidden_dims=(8,)),
}


def _model(name: str):
    keras.utils.set_random_seed(0)
    model = keras_vae.VAE(KINDS[name])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def _binary_images(n: int = 8, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 28, 28, 1)) < 0.2).astype(np.float32)


@pytest.mark.slow
def test_load_model_after_import_keras_vae_reads_every_kind_without_a_warning(tmp_path):
    """A fresh interpreter that imports keras_vae and nothing of it by name loads each
    kind's best.keras with `keras.models.load_model`, uncompiled, without one warning —
    TensorFlow imported first, which looks keras up before it imports it. Files that name
    the model classes of earlier versions (HierarchicalVAE, SpatialVAE) load as the one
    class, with the weights they hold."""
    paths = {}
    for name in KINDS:
        paths[name] = str(tmp_path / f"{len(paths)}.keras")
        save_checkpoint(_model(name), paths[name])
    for name, earlier in (("VampPrior hierarchy", "HierarchicalVAE"), ("spatial", "SpatialVAE")):
        paths[f"{name} as {earlier}"] = _renamed(paths[name], earlier)
    probe = ("import json, sys, warnings\nimport keras_vae, tensorflow, keras\nfound = {}\n"
             "for name, path in json.loads(sys.argv[1]).items():\n"
             "    with warnings.catch_warnings(record=True) as caught:\n"
             "        warnings.simplefilter('always')\n"
             "        model = keras.models.load_model(path)\n"
             "    found[name] = [type(model).__name__, model.compiled,\n"
             "                   [str(w.message) for w in caught],\n"
             "                   round(float(sum(abs(w.numpy()).sum()\n"
             "                                   for w in model.weights)), 3)]\n"
             "print(json.dumps(found))")
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(paths)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {name: ["VAE", False, [], _weight_sum(_model(name.split(" as ")[0]))]
                     for name in paths}


def _renamed(path: str, class_name: str) -> str:
    """A copy of a .keras file whose config names the model class `class_name`."""
    renamed = path.replace(".keras", f"-{class_name}.keras")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(renamed, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                assert config["class_name"] == "VAE"
                data = json.dumps({**config, "class_name": class_name}).encode()
            target.writestr(item, data)
    return renamed


def _weight_sum(model) -> float:
    return round(float(sum(np.abs(np.asarray(w)).sum() for w in model.weights)), 3)


@pytest.mark.parametrize("name", list(KINDS))
def test_sampling_is_seeded_and_codes_decode_to_the_reconstructions(name):
    vae = keras_vae.TrainedVAE(_model(name))
    label = None if not vae.config.conditional else vae.label_names[1]
    shape = vae.config.image_shape
    first = vae.sample(5, seed=3, temperature=0.7, label=label)
    assert first.shape == (5, *shape) and first.dtype == np.float32
    assert 0 <= first.min() and first.max() <= 1
    np.testing.assert_array_equal(first, vae.sample(5, seed=3, temperature=0.7, label=label))
    assert np.abs(first - vae.sample(5, seed=4, temperature=0.7, label=label)).max() > 1e-3
    images = (np.random.default_rng(0).integers(0, 256, (3, *shape))).astype(np.uint8)
    labels = None if not vae.config.conditional else [0, 1, 0]
    z_mean, z_log_var = vae.encode(images, labels)
    assert z_mean.shape == z_log_var.shape == (3, sum(vae.config.levels))
    np.testing.assert_allclose(vae.decode(z_mean, labels), vae.reconstruct(images, labels),
                               atol=1e-6)


def test_log_likelihood_is_the_evaluations_estimate_on_uint8_or_float_pixels():
    """uint8 0/1 pixels of a Bernoulli model are its binary pixels: the same numbers as
    the evaluation's estimator on the float images, and the bits per dimension follow."""
    vae = keras_vae.TrainedVAE(_model("one level"))
    images = _binary_images()
    log_p = vae.log_likelihood(images.astype(np.uint8), k=50, seed=2)
    np.testing.assert_allclose(-log_p, importance_nll(vae.model, images, 50, 2), rtol=1e-6)
    np.testing.assert_allclose(vae.bits_per_dim(log_p), -log_p / (784 * np.log(2)))
    assert np.all(log_p < 0)


@pytest.mark.parametrize("call, message", [
    (lambda v: v.sample(2), "this model is conditional: pass label= one of a, b, c"),
    (lambda v: v.sample(2, label="bb"), r"label 'bb' is not a class of this model \(did you "
                                        r"mean 'b'\?\)"),
    (lambda v: v.sample(2, label=3), "label 3 is not a class index 0-2"),
    (lambda v: v.encode(np.zeros((2, 28, 28, 1)), [0]), "1 labels for 2 images"),
    (lambda v: v.encode(np.zeros((2, 32, 32, 3)), [0, 1]), r"images of shape \[32, 32, 3\]; "
                                                           r"this model takes \[28, 28, 1\]"),
])
def test_wrong_inputs_say_what_to_pass(call, message):
    with pytest.raises(ValueError, match=message):
        call(keras_vae.TrainedVAE(_model("conditional one level")))


def test_a_class_name_in_any_letter_case_picks_that_class():
    vae = keras_vae.TrainedVAE(_model("conditional one level"))
    np.testing.assert_array_equal(vae.sample(3, seed=1, label="B"), vae.sample(3, seed=1,
                                                                                 label=1))


def _python_blocks(page: str) -> list[str]:
    with open(os.path.join(ROOT, "docs", page)) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


@pytest.mark.slow
def test_the_keras_io_example_of_docs_python_runs_as_written():
    """docs/python.md's first example trains in Python and prints figures: run in a fresh
    interpreter, its likelihood lies between the data's own entropy (10 prototypes, each
    pixel flipped with probability 0.05: log 10 + 784·H(0.05) = 157.9 nats) and the
    validation bound, which is far below a coin's 543 nats."""
    done = subprocess.run([sys.executable, "-c", _python_blocks("python.md")[0]], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    bound = float(re.search(r"validation negative ELBO ([\d.]+) nats", done.stdout)[1])
    nll = float(re.search(r"−log p\(x\) ≈ ([\d.]+) nats", done.stdout)[1])
    assert 150 < nll < bound + 5 and bound < 300


@pytest.mark.slow
def test_the_load_example_of_docs_python_runs_on_a_trained_run(trained_run):
    code = f"RUN_DIR = {trained_run!r}\n" + _python_blocks("python.md")[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("TrainedVAE(bernoulli, latent levels [4], images "
                                  "[28, 28, 1] from ")
