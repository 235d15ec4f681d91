"""Datasets (TFDS, a folder of images, an .npz file), and the tf.data pipeline that feeds
training.

Splits are decoded once into uint8 arrays (a 70,000-image MNIST-sized set is 55 MB), so
each epoch only shuffles indices and gathers batches: the pipeline costs microseconds per
batch and never limits a training step. Pixels become float32 in [0, 1] per batch.

A data set larger than the memory budget (`--memory-budget-mb`, by default a quarter of
the machine's memory) is decoded once into memory-mapped files instead, and batches are
read from them by parallel tf.data workers: the same indices, the same order, the same
pixels as in memory, with the operating system paging images in from disk.

TFDS datasets come through `keras_vae.data.tfds_source`, folders and npz files through
`keras_vae.data.sources`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from keras_vae.config import DEFAULT_MAX_IMAGE_PIXELS, SOURCE_PREFIXES, TrainConfig
from keras_vae.data import sources
from keras_vae.data.storage import IN_MEMORY, Storage, take
from keras_vae.data.tfds_source import tfds_splits
from keras_vae.run.cli import RunFailure
from keras_vae.run.memory import default_data_budget_mb

MAX_HOLDOUT = 10_000
HOLDOUT_FRACTION = 5
"""A split a dataset lacks is held out from its training examples: a fifth of them, at
most `MAX_HOLDOUT` (so MNIST's 60,000 give 50,000 / 10,000)."""


def holdout_size(examples: int) -> int:
    return min(MAX_HOLDOUT, examples // HOLDOUT_FRACTION)


@dataclass(frozen=True)
class Split:
    """One split in memory: uint8 images [N, H, W, C], labels [N] (None if unlabeled), the
    value of a white pixel (1 for binary sets stored as 0/1, else 255), the class names."""

    images: np.ndarray
    labels: np.ndarray | None
    pixel_max: int
    label_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.images.shape[1:])

    def pixel_kind(self) -> str:
        """"binary" when every pixel is 0 or white, else "8-bit" (reads every image)."""
        chunks = (self.images[i:i + 10_000] for i in range(0, len(self.images), 10_000))
        binary = all(((c == 0) | (c == self.pixel_max)).all() for c in chunks)
        return "binary" if binary else "8-bit"

    def as_float(self, ids: np.ndarray | None = None) -> np.ndarray:
        """The images (those at `ids`, if given) as float32 pixels in [0, 1]."""
        images = self.images if ids is None else self.images[ids]
        return images.astype(np.float32) / self.pixel_max


def first_examples(split: Split, count: int | None) -> Split:
    """The split's first `count` examples (all of them for None)."""
    if count is None:
        return split
    labels = None if split.labels is None else split.labels[:count]
    return dataclasses.replace(split, images=split.images[:count], labels=labels)


def load_splits(dataset: str, data_dir: str | None = None, max_examples: int | None = None,
                accept_manual_files: bool = False, image_size: tuple[int, int] | None = None,
                split_seed: int = 0, storage: Storage = IN_MEMORY,
                max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> dict[str, Split]:
    """Loads `train`, `validation` and `test` of a dataset, decoded to uint8.

    Args:
        dataset: a TFDS name, `folder:PATH` or `npz:PATH` (see `keras_vae.data.sources`).
        data_dir: TFDS data directory; see `resolve_data_dir`.
        max_examples: keep only the first N examples of each split (quick runs, tests).
        accept_manual_files: prepare from source files in `downloads/manual/` even when
            their checksums differ from TFDS's registered ones (see `ensure_prepared`).
        image_size: (height, width) to resize every image to; None keeps the data's size.
        split_seed: seed of the permutation that splits a folder or npz file.
        storage: where the images go (memory, or memory-mapped files above a budget).
        max_image_pixels: the most pixels an image file or npz image may declare
            (`keras_vae.data.image_files`).

    Returns:
        {"train": Split, "validation": Split, "test": Split}.
    """
    if dataset.startswith(SOURCE_PREFIXES):
        kind, path = dataset.split(":", 1)
        data = (sources.read_folder(path, image_size, storage, max_image_pixels)
                if kind == "folder" else sources.read_npz(path, image_size, max_image_pixels))
        splits = seeded_splits(data, split_seed, max_examples, dataset, storage)
    else:
        arrays, label_names = tfds_splits(dataset, data_dir, max_examples,
                                          accept_manual_files, image_size, storage,
                                          holdout_size)
        splits = {name: Split(images=images, labels=labels, pixel_max=255,
                              label_names=label_names)
                  for name, (images, labels) in arrays.items()}
    return _with_common_scale(splits)


def splits_for(config: TrainConfig, max_examples: int | None = None) -> dict[str, Split]:
    """The splits a run was (or is to be) trained and evaluated on, from its record;
    `max_examples` overrides the record's. Images above the run's memory budget go to
    memory-mapped files in its run directory."""
    return load_splits(config.dataset, config.data_dir, max_examples or config.max_examples,
                       config.accept_manual_files, config.image_size, config.split_seed,
                       storage_for(config), config.max_image_pixels)


def storage_for(config: TrainConfig) -> Storage:
    budget = (default_data_budget_mb() if config.memory_budget_mb is None
              else config.memory_budget_mb)
    return Storage(budget_bytes=budget * 2**20, spill_dir=config.out)


def seeded_splits(data: sources.Images, seed: int, max_examples: int | None,
                  dataset: str, storage: Storage = IN_MEMORY
                  ) -> dict[str, Split]:
    """Test, validation and train from one seeded permutation: a fifth each for test and
    validation (at most 10,000 each), the rest for training. The same seed and files give
    the same split, so a resumed run and `evaluate` see the same examples."""
    examples = len(data.images)
    holdout = holdout_size(examples)
    if holdout < 1:
        raise RunFailure(f"{dataset} has {examples} images; a run needs at least "
                         f"{HOLDOUT_FRACTION} (a fifth each for validation and test)")
    order = np.random.default_rng(seed).permutation(examples)
    parts = {"train": order[2 * holdout:], "validation": order[holdout:2 * holdout],
             "test": order[:holdout]}
    on_disk = isinstance(data.images, np.memmap)
    return {name: Split(images=take(data.images, ids[:max_examples], storage, on_disk),
                        labels=None if data.labels is None else data.labels[ids[:max_examples]],
                        pixel_max=255, label_names=data.label_names)
            for name, ids in parts.items()}


def _with_common_scale(splits: dict[str, Split]) -> dict[str, Split]:
    """Every split scaled by the training split's white: 1 for data stored as 0/1."""
    pixel_max = 1 if int(splits["train"].images.max(initial=0)) <= 1 else 255
    return {name: dataclasses.replace(split, pixel_max=pixel_max)
            for name, split in splits.items()}


def make_dataset(split: Split, batch_size: int, *, shuffle_seed: int | None = None,
                 binarize_seed: int | None = None,
                 epoch: tf.Variable | None = None, with_labels: bool = False
                 ) -> tf.data.Dataset:
    """Batches of float32 images [B, H, W, C] in [0, 1], prefetched; with `with_labels`,
    (images, int64 labels [B]) pairs, as a conditional model trains on.

    Training randomness is a stateless function of (seed, epoch, batch), with the epoch
    read from the `epoch` variable when an iteration starts; the `TrainingEpoch` callback
    keeps it equal to Keras's epoch. So the order does not depend on how often the dataset
    is iterated: the same on one device and under a tf.distribute strategy (whose Keras
    loop opens one extra iterator to build the model, and whose dataset rewrite re-seeds
    TF's stateful shuffle), and a resumed run continues the uninterrupted run's epochs.
    A split held in a memory-mapped file gives the same batches as one in memory.

    Args:
        split: the images, in memory or memory-mapped.
        batch_size: examples per batch; the last batch may be smaller.
        shuffle_seed: if set, a fresh permutation every epoch, keyed by (seed, epoch).
        binarize_seed: if set, each pixel becomes a Bernoulli draw with its gray level as
            probability. With `shuffle_seed` (training) the draws are fresh each epoch —
            the dynamic binarization of the IWAE paper; without it they are the same each
            time, a fixed binarization for evaluation.
        epoch: scalar int64 variable holding the epoch being trained (with `shuffle_seed`;
            without one, iterations count as epoch 0).
        with_labels: pair each batch with its labels (the split must have them).
    """
    read_rows = _row_reader(split)
    labels = tf.constant(split.labels, tf.int64) if with_labels else None
    scale = 1.0 / split.pixel_max
    size = len(split)

    def epoch_batches(_):
        current = tf.constant(0, tf.int64) if epoch is None else epoch.read_value()
        indices = tf.range(size, dtype=tf.int64)
        if shuffle_seed is not None:
            indices = tf.random.experimental.stateless_shuffle(
                indices, seed=tf.stack([tf.constant(shuffle_seed, tf.int64), current]))
        batches = tf.data.Dataset.from_tensor_slices(indices).batch(batch_size).enumerate()
        return batches.map(lambda batch, ids: (ids, tf.stack([current, batch])))

    def gather(batch_indices, epoch_and_batch):
        images = tf.cast(read_rows(batch_indices), tf.float32) * scale
        if binarize_seed is not None:
            images = _binarized(images, binarize_seed, epoch_and_batch)
        return images if labels is None else (images, tf.gather(labels, batch_indices))

    dataset = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).flat_map(epoch_batches)
    # Parallel, in order: batch i is always the i-th batch of the epoch's permutation.
    dataset = dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # flat_map hides the length; Keras needs it to know where an epoch ends.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-size // batch_size)))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _binarized(gray, seed: int, epoch_and_batch):
    """Each pixel a Bernoulli draw with its gray level as probability, keyed by (seed,
    epoch, batch)."""
    key = tf.random.experimental.stateless_fold_in(
        tf.stack([tf.constant(seed, tf.int64), epoch_and_batch[0]]), epoch_and_batch[1])
    return tf.cast(tf.random.stateless_uniform(tf.shape(gray), seed=key) < gray, tf.float32)


def _row_reader(split: Split):
    """indices [B] → uint8 images [B, H, W, C]: a gather from a tensor in memory, or rows
    read from the memory-mapped file (outside the graph, so several batches are read at
    once by tf.data's parallel map)."""
    if not isinstance(split.images, np.memmap):
        images = tf.constant(split.images)
        return lambda ids: tf.gather(images, ids)
    source = split.images

    def read(ids: np.ndarray) -> np.ndarray:
        order = np.argsort(ids)  # ascending offsets: sequential reads where ids allow
        rows = np.empty((len(ids), *source.shape[1:]), np.uint8)
        rows[order] = source[ids[order]]
        return rows

    def read_rows(ids):
        rows = tf.numpy_function(read, [ids], tf.uint8, stateful=False)
        return tf.ensure_shape(rows, [None, *source.shape[1:]])

    return read_rows


def datasets_for(config: TrainConfig, splits: dict, epoch: tf.Variable | None = None
                 ) -> tuple:
    """(train, validation, test) tf.data pipelines as this run trains and evaluates on them.

    Training reshuffles (and, with dynamic binarization, redraws pixels) every epoch, keyed
    by `epoch` (see `epoch_variable`, kept current by the `TrainingEpoch` callback);
    validation and test are fixed, so every evaluation of a run sees the same examples.
    """
    binarize = config.seed if config.dynamic_binarization else None
    labelled = config.model.conditional
    return (make_dataset(splits["train"], config.batch_size, shuffle_seed=config.seed,
                         binarize_seed=binarize, epoch=epoch, with_labels=labelled),
            make_dataset(splits["validation"], config.batch_size, binarize_seed=binarize,
                         with_labels=labelled),
            make_dataset(splits["test"], config.batch_size, binarize_seed=binarize,
                         with_labels=labelled))


def epoch_variable() -> tf.Variable:
    """The epoch variable `make_dataset` reads; `TrainingEpoch` sets it during `fit`."""
    return tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")


def images_of(dataset: tf.data.Dataset) -> np.ndarray:
    """All images of a finite `make_dataset` pipeline, in its order, as one array (the
    images alone where batches are (images, labels))."""
    return np.concatenate([(batch[0] if isinstance(batch, tuple) else batch).numpy()
                           for batch in dataset])
