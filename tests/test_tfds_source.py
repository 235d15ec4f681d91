"""Specification of keras_vae/data/tfds_source.py: TFDS datasets, offline behaviour, and the
lines that say what to do."""

from __future__ import annotations

import itertools
import os
import shutil
import time

import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download.checksums import compute_url_info

from keras_vae.data import pipeline as data
from keras_vae.data import tfds_source
from keras_vae.data.pipeline import load_splits
from keras_vae.run.cli import RunFailure, UsageError


def test_datasets_without_validation_split_hold_out_the_last_training_examples():
    builder = tfds.builder("fashion_mnist", data_dir=tfds_source.resolve_data_dir(None))
    assert tfds_source.tfds_split_names(builder, None, data.holdout_size) == {
        "train": "train[0:50000]", "validation": "train[50000:60000]",
        "test": "test[0:10000]"}
    assert tfds_source.tfds_split_names(builder, 100, data.holdout_size) == {
        "train": "train[0:100]", "validation": "train[50000:50100]", "test": "test[0:100]"}
    assert data.holdout_size(60_000) == 10_000 and data.holdout_size(1000) == 200


def test_data_dir_comes_from_flag_then_environment_then_tfds_default(monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", "/from/env")
    assert tfds_source.resolve_data_dir("/from/flag") == "/from/flag"
    assert tfds_source.resolve_data_dir(None) == "/from/env"
    monkeypatch.delenv("TFDS_DATA_DIR")
    assert tfds_source.resolve_data_dir(None) is None


def test_unknown_dataset_is_a_usage_error_naming_the_choices():
    with pytest.raises(UsageError, match="unknown dataset .cifar.: did you mean cifar10 .*give "
                                         "a TFDS name.*npz:PATH"):
        load_splits("cifar")


@pytest.mark.parametrize("name", ["fashion-mnist", "fashion_mnst", "fashionmnist"])
def test_a_misspelt_dataset_name_gets_the_closest_known_one(name):
    """A hyphen is not even a name TFDS can parse; it still gets the right line."""
    with pytest.raises(UsageError, match=f"unknown dataset '{name}': did you mean "
                                         f"fashion_mnist"):
        load_splits(name)


def test_an_unreachable_host_is_detected_within_seconds():
    start = time.monotonic()
    assert not tfds_source._host_reachable("dataset-host.invalid")  # .invalid never resolves
    assert time.monotonic() - start < 2 * tfds_source.HOST_TIMEOUT_SECONDS + 1


def test_offline_and_unprepared_fails_fast_with_how_to_prepare(offline, empty_data_dir):
    searched = tfds.builder("mnist", data_dir=empty_data_dir).data_dir_root
    start = time.monotonic()
    with pytest.raises(RunFailure) as failure:
        load_splits("mnist", data_dir=empty_data_dir)
    assert time.monotonic() - start < 10
    message = str(failure.value)
    assert "\n" not in message
    assert f"'mnist' is not prepared in {searched} " in message
    assert "train-images-idx3-ubyte.gz" in message
    assert f"{searched}/downloads/manual" in message


DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
"""Debian's dataset-fashion-mnist package: Fashion-MNIST's source files, recompressed."""


@pytest.fixture
def recompressed_manual_files(tmp_path) -> str:
    """A TFDS data directory whose downloads/manual holds Debian's recompressed files."""
    if not os.path.isdir(DEBIAN_FASHION_MNIST):
        pytest.skip("apt-get install dataset-fashion-mnist provides the recompressed files")
    manual = tmp_path / "tfds" / "downloads" / "manual"
    manual.mkdir(parents=True)
    for name in os.listdir(DEBIAN_FASHION_MNIST):
        shutil.copy(os.path.join(DEBIAN_FASHION_MNIST, name), manual / name)
    return str(tmp_path / "tfds")


@pytest.fixture
def few_examples_prepared(monkeypatch):
    """TFDS prepares only the first 50 examples of each MNIST-family split: the source
    files are still read and checked in full, without 30 s of writing 70,000 records."""
    from tensorflow_datasets.image_classification import mnist

    generate = mnist.MNIST._generate_examples
    monkeypatch.setattr(mnist.MNIST, "_generate_examples",
                        lambda self, **kwargs: itertools.islice(generate(self, **kwargs), 50))


def test_recompressed_source_files_are_one_line_then_accepted_on_request(
        offline, recompressed_manual_files, few_examples_prepared):
    with pytest.raises(RunFailure, match="differs from the file TFDS registered") as error:
        load_splits("fashion_mnist", recompressed_manual_files, max_examples=10)
    assert "--accept-manual-files" in str(error.value) and "\n" not in str(error.value)
    splits = load_splits("fashion_mnist", recompressed_manual_files, max_examples=10,
                         accept_manual_files=True)
    assert splits["train"].images.shape == (10, 28, 28, 1)
    assert splits["test"].labels.max() <= 9
    registered = {info.checksum for info in tfds.builder("fashion_mnist").url_infos.values()}
    manual = os.path.join(recompressed_manual_files, "downloads", "manual")
    accepted = {compute_url_info(os.path.join(manual, name)).checksum
                for name in os.listdir(manual)}
    assert not registered & accepted  # TFDS's own table is back as it was
