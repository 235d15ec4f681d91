"""Specification of keras_vae/data.py: splits, the tf.data pipeline, offline behaviour."""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download.checksums import compute_url_info

from keras_vae import data
from keras_vae.cli import RunFailure, UsageError
from keras_vae.data import load_splits
from keras_vae.sources import Storage


def _epoch(dataset) -> np.ndarray:
    return data.images_of(dataset)


def _small_split(n=300, gray=False) -> data.Split:
    rng = np.random.default_rng(0)
    if gray:
        images = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
        return data.Split(images=images, labels=None, pixel_max=255)
    images = (rng.random((n, 28, 28, 1)) < 0.2).astype(np.uint8)
    return data.Split(images=images, labels=None, pixel_max=1)


def test_binarized_mnist_has_the_larochelle_splits(binarized_mnist_source, binarized_mnist_splits):
    sizes = {name: len(split) for name, split in binarized_mnist_splits.items()}
    if binarized_mnist_source == "real":
        assert sizes == {"train": 50_000, "validation": 10_000, "test": 10_000}
    for split in binarized_mnist_splits.values():
        assert split.images.shape[1:] == (28, 28, 1)
        assert set(np.unique(split.as_float())) <= {0.0, 1.0}


def test_max_examples_keeps_the_first_examples_of_each_split(binarized_mnist_splits):
    limited = data.load_splits("binarized_mnist", max_examples=100)
    for name, split in limited.items():
        assert len(split) == 100
        np.testing.assert_array_equal(split.images, binarized_mnist_splits[name].images[:100])


def test_every_example_appears_once_per_epoch_in_a_new_seeded_order():
    split = _small_split()
    epoch = data.epoch_variable()
    dataset = data.make_dataset(split, 64, shuffle_seed=5, epoch=epoch)
    first = _epoch(dataset)
    epoch.assign(1)
    second = _epoch(dataset)
    key = lambda images: sorted(map(bytes, images.astype(np.uint8)))  # noqa: E731
    assert key(first) == key(split.images) == key(second)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, _epoch(data.make_dataset(split, 64, shuffle_seed=5)))


def test_with_labels_each_shuffled_batch_pairs_images_with_their_own_labels():
    split = _small_split(n=200)
    labelled = data.Split(images=split.images, labels=np.arange(200) % 7, pixel_max=1)
    batches = list(data.make_dataset(labelled, 64, shuffle_seed=3, with_labels=True))
    images = np.concatenate([b[0].numpy() for b in batches])
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(images, _epoch(data.make_dataset(split, 64, shuffle_seed=3)))
    order = [np.flatnonzero((split.images == image).all(axis=(1, 2, 3)))[0] for image in images]
    np.testing.assert_array_equal(labels, np.asarray(order) % 7)


def test_the_epoch_variable_alone_decides_the_order_and_draws():
    split = _small_split(gray=True)
    epoch = data.epoch_variable()
    dataset = data.make_dataset(split, 64, shuffle_seed=5, binarize_seed=3, epoch=epoch)
    first, again = _epoch(dataset), _epoch(dataset)  # iterations alone do not advance it
    np.testing.assert_array_equal(first, again)
    epoch.assign(1)
    second = _epoch(dataset)
    assert not np.array_equal(first, second)
    elsewhere = data.epoch_variable()
    elsewhere.assign(1)  # a resumed run's pipeline, starting at epoch 1
    np.testing.assert_array_equal(
        _epoch(data.make_dataset(split, 64, shuffle_seed=5, binarize_seed=3, epoch=elsewhere)),
        second)


def test_unshuffled_batches_keep_order_and_scale_to_unit_interval():
    split = _small_split(gray=True)
    batches = list(data.make_dataset(split, 128))
    assert [len(b) for b in batches] == [128, 128, 44]
    np.testing.assert_allclose(np.concatenate(batches), split.images / 255.0, atol=1e-7)


def test_dynamic_binarization_draws_fresh_pixels_each_epoch_with_gray_level_odds():
    split = _small_split(gray=True)
    epoch = data.epoch_variable()
    dataset = data.make_dataset(split, 100, shuffle_seed=1, binarize_seed=2, epoch=epoch)
    first = _epoch(dataset)
    epoch.assign(1)
    second = _epoch(dataset)
    assert set(np.unique(first)) == {0.0, 1.0}
    # Sorted per-image ink counts ignore the shuffle order: they differ only if the draws do.
    ink = lambda images: sorted(images.sum(axis=(1, 2, 3)))  # noqa: E731
    assert ink(first) != ink(second)
    assert first.mean() == pytest.approx(split.as_float().mean(), abs=0.01)


def test_a_memory_mapped_split_gives_the_same_batches_as_one_in_memory(tmp_path):
    """Above the memory budget only where the images live changes: the same order, draws
    and pixels every epoch, and the file's name is gone once it is mapped."""
    split = _small_split(gray=True)
    mapped = Storage(budget_bytes=0, spill_dir=str(tmp_path)).new_images(split.images.shape)
    mapped[:] = split.images
    assert isinstance(mapped, np.memmap) and os.listdir(tmp_path) == []
    on_disk = dataclasses.replace(split, images=mapped)
    for epoch_number in (0, 1):
        epochs = []
        for source in (split, on_disk):
            epoch = data.epoch_variable()
            epoch.assign(epoch_number)
            epochs.append(_epoch(data.make_dataset(source, 64, shuffle_seed=5,
                                                   binarize_seed=3, epoch=epoch)))
        np.testing.assert_array_equal(*epochs)


def test_a_tfds_set_above_the_budget_loads_into_memory_mapped_files(tmp_path,
                                                                     binarized_mnist_splits):
    splits = load_splits("binarized_mnist", max_examples=300,
                         storage=Storage(budget_bytes=100_000, spill_dir=str(tmp_path)))
    for name, split in splits.items():
        assert isinstance(split.images, np.memmap), name
        np.testing.assert_array_equal(split.images, binarized_mnist_splits[name].images[:300])
    assert splits["train"].pixel_max == 1 and os.listdir(tmp_path) == []


def test_fixed_binarization_for_evaluation_is_the_same_every_time():
    split = _small_split(gray=True)
    dataset = data.make_dataset(split, 100, binarize_seed=2)
    np.testing.assert_array_equal(_epoch(dataset), _epoch(dataset))


def test_datasets_without_validation_split_hold_out_the_last_training_examples():
    builder = tfds.builder("fashion_mnist", data_dir=data.resolve_data_dir(None))
    assert data.tfds_split_names(builder, None) == {
        "train": "train[0:50000]", "validation": "train[50000:60000]",
        "test": "test[0:10000]"}
    assert data.tfds_split_names(builder, 100) == {
        "train": "train[0:100]", "validation": "train[50000:50100]", "test": "test[0:100]"}
    assert data.holdout_size(60_000) == 10_000 and data.holdout_size(1000) == 200


def test_data_dir_comes_from_flag_then_environment_then_tfds_default(monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", "/from/env")
    assert data.resolve_data_dir("/from/flag") == "/from/flag"
    assert data.resolve_data_dir(None) == "/from/env"
    monkeypatch.delenv("TFDS_DATA_DIR")
    assert data.resolve_data_dir(None) is None


def test_unknown_dataset_is_a_usage_error_naming_the_choices():
    with pytest.raises(UsageError, match="unknown dataset 'cifar': give a TFDS name.*npz:PATH"):
        data.load_splits("cifar")


def test_an_unreachable_host_is_detected_within_seconds():
    start = time.monotonic()
    assert not data._host_reachable("dataset-host.invalid")  # .invalid never resolves
    assert time.monotonic() - start < 2 * data.HOST_TIMEOUT_SECONDS + 1


def test_offline_and_unprepared_fails_fast_with_how_to_prepare(offline, empty_data_dir):
    searched = data.tfds.builder("mnist", data_dir=empty_data_dir).data_dir_root
    start = time.monotonic()
    with pytest.raises(RunFailure) as failure:
        data.load_splits("mnist", data_dir=empty_data_dir)
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
