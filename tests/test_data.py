"""Specification of keras_vae/data/pipeline.py: splits, the tf.data pipeline, offline behaviour."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from keras_vae.data import pipeline as data
from keras_vae.data.pipeline import load_splits
from keras_vae.data.storage import Storage


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
