"""Shared fixtures: real binarized MNIST when it is prepared, TFDS mock data otherwise.

CI points `TFDS_DATA_DIR` at the real prepared `binarized_mnist`; a machine without it
still runs every data-dependent test, on `tfds.testing.mock_data` (binary noise images
in the real split sizes' place), instead of skipping them.
"""

from __future__ import annotations

import contextlib
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import keras_vae.data.pipeline
import keras_vae.data.tfds_source
from keras_vae.run.machine import prefer_wide_vectors

# XLA reads its flags at its first compilation: every test process compiles as the
# commands do, whichever test runs first.
prefer_wide_vectors()

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The xdist workers share the machine's cores; one op thread each keeps them from
    # oversubscribing it (set before TensorFlow runs its first op).
    tf.config.threading.set_intra_op_parallelism_threads(1)

MOCK_EXAMPLES = 2_000
TRAINED_RUN_FLAGS = ["--dataset", "binarized_mnist", "--epochs", "1", "--max-examples", "1000",
                     "--latent-dim", "4", "--hidden-dims", "64", "--no-jit", "--verbose", "0"]
"""The training of the shared `trained_run` fixture (without XLA: its compile is most of a
1-epoch run's time, and these tests test no speed)."""


def _prepared(name: str) -> bool:
    data_dir = keras_vae.data.tfds_source.resolve_data_dir(None)
    return bool(data_dir) and tfds.builder(name, data_dir=data_dir).is_prepared()


def _binary_mock_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
    """Binary 28×28×1 images with structure to learn, like digits: noisy copies (5 % of
    pixels flipped) of 10 fixed random prototypes, each with 15 % ink."""
    prototypes = np.random.default_rng(0).random((10, 28, 28, 1)) < 0.15
    rng = np.random.default_rng(len(str(split)))
    images = prototypes[rng.integers(0, 10, MOCK_EXAMPLES)]
    images ^= rng.random(images.shape) < 0.05
    return tf.data.Dataset.from_tensor_slices({"image": images.astype(np.uint8)})


@contextlib.contextmanager
def binarized_mnist_data():
    """'real' or 'mock': the real prepared binarized_mnist if TFDS_DATA_DIR has it, else
    TFDS mock data for it (also used by the helper scripts that tests run as processes)."""
    if _prepared("binarized_mnist"):
        yield "real"
        return
    with pytest.MonkeyPatch.context() as patch, tfds.testing.mock_data(
            num_examples=MOCK_EXAMPLES, as_dataset_fn=_binary_mock_dataset):
        # Mock data needs no download: report the mocked dataset (only it) as prepared.
        is_prepared = tfds.core.DatasetBuilder.is_prepared
        patch.setattr(tfds.core.DatasetBuilder, "is_prepared",
                      lambda self: self.name == "binarized_mnist" or is_prepared(self))
        yield "mock"


@pytest.fixture(scope="session")
def binarized_mnist_source() -> str:
    """'real' or 'mock': where `binarized_mnist` comes from for this test session."""
    with binarized_mnist_data() as source:
        yield source


@pytest.fixture(scope="session")
def binarized_mnist_splits(binarized_mnist_source):
    return keras_vae.data.pipeline.load_splits("binarized_mnist")


@pytest.fixture
def offline(monkeypatch):
    """No host is reachable, as on a machine without internet (whatever this one has)."""
    monkeypatch.setattr(keras_vae.data.tfds_source, "_host_reachable", lambda host: False)


@pytest.fixture
def empty_data_dir(tmp_path) -> str:
    path = tmp_path / "tfds"
    path.mkdir()
    return os.fspath(path)


@pytest.fixture(scope="session")
def small_export(tmp_path_factory) -> dict:
    """A small VAE (latent 6, hidden 64) exported once per session: the real pipeline on a
    model that takes no training time, with its scorer calibrated (k = 4) on `strokes`.
    Returns export_model's result plus the model and the calibration."""
    import keras

    from export.pipeline import export_model
    from keras_vae.config import ModelConfig, TrainConfig
    from keras_vae.measure.scoring import Scorer, calibrate
    from keras_vae.model.vae import VAE

    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=6, hidden_dims=(64,)))
    export_dir = str(tmp_path_factory.mktemp("export"))
    config = TrainConfig(model=vae.config, dataset="binarized_mnist")
    calibration = calibrate(Scorer(vae, 4), strokes(64, seed=1), fpr=0.1)
    return {**export_model(vae, export_dir, config, calibration=calibration), "vae": vae,
            "export_dir": export_dir, "calibration": calibration}


EDGE_FILES = ("sample.py", "score.py", "vae_cli.py", "vae_decoder.py", "vae_draws.py",
              "vae_pictures.py")
"""The serving files docs/export-and-serving.md says to copy onto a device."""


def copy_edge_files(folder) -> None:
    """Copies `EDGE_FILES` alone into `folder`, as onto a device."""
    serving = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "serving")
    for name in EDGE_FILES:
        shutil.copy(os.path.join(serving, name), os.path.join(folder, name))


def bars_and_blobs(n: int, side: int, seed: int = 0) -> np.ndarray:
    """Binary side×side images with two underlying factors: a bar's position and a blob's
    brightness, so that small latent levels have something to hold. float32 [n, side,
    side, 1]."""
    rng = np.random.default_rng(seed)
    position, brightness = rng.uniform(-2, 2, (2, n, 1, 1))
    y, x = np.mgrid[:side, :side] / (side - 1) * 4 - 2
    logits = 3 * np.cos(x - position) + brightness * np.exp(-(x**2 + y**2)) - 1
    return (rng.random((n, side, side)) < 1 / (1 + np.exp(-logits)))[..., None].astype(
        np.float32)


def strokes(n: int, seed: int, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """n uint8 images (0/255) of `size` with a seeded thick bar on black: in-distribution
    stand-ins for scoring an untrained model."""
    rng = np.random.default_rng(seed)
    height, width = size
    images = np.zeros((n, height, width, 1), np.uint8)
    for image in images:
        row, left = rng.integers(0, height // 2), rng.integers(0, width // 3)
        image[row:row + height // 7, left:left + width // 2] = 255
    return images


@contextlib.contextmanager
def _exclusive(lock_path: str):
    """Holds an exclusive lock on `lock_path` (created if missing)."""
    import fcntl

    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


@pytest.fixture(scope="session")
def trained_run(binarized_mnist_source, tmp_path_factory) -> str:
    """A run directory from one short real training (1 epoch, 1,000 examples).

    Trained once for the whole session: under pytest-xdist the workers share one base
    directory, and the first worker to need the run trains it while the others wait.
    Tests only read it (`run_copy` gives a private copy to write into)."""
    from keras_vae.run.cli import run_command
    from keras_vae.train import main

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # common to every worker of this session
    run_dir = base / "trained_run"
    with _exclusive(str(base / "trained_run.lock")):
        if not (run_dir / "summary.json").exists():
            assert run_command(main, "keras_vae.train",
                               [*TRAINED_RUN_FLAGS, "--out", str(run_dir)]) == 0
    return str(run_dir)


@pytest.fixture(scope="session")
def vamp_export(tmp_path_factory) -> dict:
    """Like `small_export`, for a model with a VampPrior of 10 pseudo-inputs."""
    import keras

    from export.pipeline import export_model
    from keras_vae.config import ModelConfig, TrainConfig
    from keras_vae.model.vae import VAE

    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli",
                          latent_dim=6, hidden_dims=(64,), prior="vamp", pseudo_inputs=10))
    export_dir = str(tmp_path_factory.mktemp("vamp_export"))
    config = TrainConfig(model=vae.config, dataset="binarized_mnist")
    return {**export_model(vae, export_dir, config), "vae": vae, "export_dir": export_dir}


@pytest.fixture
def run_copy(trained_run, tmp_path) -> str:
    """A private copy of `trained_run` for a test that writes into a run: the shared run
    itself is never modified."""
    import shutil

    copy = str(tmp_path / "run")
    shutil.copytree(trained_run, copy)
    return copy


TRAINING_FIXTURES = {"trained_run", "run_copy", "short_run", "two_d_vae"}
"""Fixtures that train a model first: every test using one is marked `slow`."""


LONGEST_FILES = ("test_distribute.py", "test_evaluate.py", "test_hierarchy.py", "test_web.py",
                 "test_nll.py", "test_own_images.py", "test_crash_recovery.py", "test_bench.py",
                 "test_export_cli.py", "test_trained.py", "test_spatial.py",
                 "test_conditional.py", "test_export_bench.py", "test_benchmarks.py",
                 "test_export_pipeline.py", "test_model.py", "test_train.py")
"""The files that take longest (23-62 s each in a full run, 2026-12-06; the longest single
test trains a spatial model through the command in test_own_images.py), longest first.
They run first so that the two xdist workers finish together: `--dist loadfile` hands
out whole files in collection order (with `--no-loadscope-reorder`, set in
pyproject.toml; xdist otherwise orders files by test count, which put a two-test,
one-minute file last, on one worker, while the other idled)."""


def _file_rank(item) -> int:
    name = item.path.name
    return LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)


def pytest_collection_modifyitems(items):
    """`pytest -m "not slow"` keeps the edit-test loop short: tests that train a run, in
    this process or in subprocesses, carry the `slow` marker (explicitly, or through a
    training fixture here). The longest files go first (`LONGEST_FILES`)."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_file_rank)  # stable: the rest keep their order
