"""Datasets from TensorFlow Datasets, and the tf.data pipeline that feeds training.

Splits are loaded once into memory as uint8 (a 70,000-image MNIST-sized set is 55 MB), so
each epoch only shuffles indices and gathers batches: the pipeline costs microseconds per
batch and never limits a training step. Pixels become float32 in [0, 1] per batch.

Offline use matters: TFDS retries a failed download for minutes, so before asking TFDS to
download we check within seconds that the dataset's hosts are reachable, and otherwise
fail with one line saying how to prepare the data by hand.
"""

from __future__ import annotations

import math
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download.checksums import compute_url_info
from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

from keras_vae.cli import RunFailure, UsageError
from keras_vae.config import DATASETS, DatasetSpec, TrainConfig

MAX_HOLDOUT = 10_000
HOLDOUT_FRACTION = 5
"""A split a dataset lacks is held out from its training examples: a fifth of them, at
most `MAX_HOLDOUT` (so MNIST's 60,000 give 50,000 / 10,000)."""


def holdout_size(examples: int) -> int:
    return min(MAX_HOLDOUT, examples // HOLDOUT_FRACTION)

HOST_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Split:
    """One split in memory: uint8 images [N, 28, 28, 1] and labels [N] (None if unlabeled)."""

    images: np.ndarray
    labels: np.ndarray | None
    pixel_max: int

    def __len__(self) -> int:
        return len(self.images)

    def as_float(self) -> np.ndarray:
        """The images as float32 pixels in [0, 1]."""
        return self.images.astype(np.float32) / self.pixel_max


def spec_of(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def resolve_data_dir(data_dir: str | None) -> str | None:
    """`--data-dir`, else `TFDS_DATA_DIR`, else None (TFDS's own default)."""
    return data_dir or os.environ.get("TFDS_DATA_DIR") or None


def load_splits(name: str, data_dir: str | None = None, max_examples: int | None = None,
                accept_manual_files: bool = False) -> dict[str, Split]:
    """Loads `train`, `validation` and `test` of a TFDS dataset into memory.

    Args:
        name: one of `DATASETS`.
        data_dir: TFDS data directory; see `resolve_data_dir`.
        max_examples: keep only the first N examples of each split (quick runs, tests).
        accept_manual_files: prepare from source files in `downloads/manual/` even when
            their checksums differ from TFDS's registered ones (see `ensure_prepared`).

    Returns:
        {"train": Split, "validation": Split, "test": Split}.
    """
    spec = spec_of(name)
    try:
        builder = tfds.builder(name, data_dir=resolve_data_dir(data_dir))
    except Exception as error:  # TFDS raises many types for unreadable metadata
        raise RunFailure(f"cannot open dataset {name!r} in {resolve_data_dir(data_dir)} "
                         f"({type(error).__name__}); its metadata is damaged: delete its "
                         f"folder and prepare it again") from None
    ensure_prepared(builder, accept_manual_files)
    tfds_splits = tfds_split_names(builder, spec.has_validation_split, max_examples)
    splits = {}
    for split_name, tfds_split in tfds_splits.items():
        try:
            arrays = _to_numpy(builder.as_dataset(split=tfds_split))
        except (tf.errors.OpError, OSError, ValueError) as error:
            raise RunFailure(
                f"dataset {name!r} in {builder.data_dir} is damaged or truncated ("
                f"{type(error).__name__} reading {tfds_split}); delete that folder and "
                f"prepare it again") from None
        labels = arrays.get("label")
        splits[split_name] = Split(images=arrays["image"], labels=labels,
                                   pixel_max=spec.pixel_max)
    return splits


def tfds_split_names(builder, has_validation_split: bool, max_examples: int | None
                     ) -> dict[str, str]:
    """TFDS split strings of train / validation / test: the dataset's own splits, or the
    validation examples held out from the end of `train`; each cut to its first
    `max_examples`, so that TFDS reads no more than that."""
    if has_validation_split:
        ranges = {name: (name, 0, builder.info.splits[name].num_examples)
                  for name in ("train", "validation", "test")}
    else:
        total = builder.info.splits["train"].num_examples
        holdout = holdout_size(total)
        ranges = {"train": ("train", 0, total - holdout),
                  "validation": ("train", total - holdout, total),
                  "test": ("test", 0, builder.info.splits["test"].num_examples)}
    cap = max_examples or math.inf
    return {name: f"{split}[{start}:{min(stop, start + cap)}]"
            for name, (split, start, stop) in ranges.items()}


def _to_numpy(dataset: tf.data.Dataset) -> dict[str, np.ndarray]:
    """A TFDS split → {"image": array, ...}, read in large batches.

    (TFDS's own batch_size=-1 sizes the batch from split metadata, which mock datasets
    do not carry; batching here works for real and mock data alike.)
    """
    batches = list(tfds.as_numpy(dataset.batch(10_000)))
    return {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}


def ensure_prepared(builder, accept_manual_files: bool = False) -> None:
    """Makes sure TFDS has the dataset on disk, or fails fast with instructions.

    Files placed by hand in `<data_dir>/downloads/manual/` are used by TFDS instead of
    downloading, which is how to prepare a dataset on a machine without internet. TFDS
    checks them against the checksums it registered for the original downloads, so the
    same data recompressed (as Linux distributions ship it: Debian's
    dataset-fashion-mnist) is refused unless `accept_manual_files` says to trust them.
    """
    if builder.is_prepared():
        return
    manual_dir = os.path.join(builder.data_dir_root, "downloads", "manual")
    url_infos = builder.url_infos or {}
    files = sorted(_file_name(url, info) for url, info in url_infos.items())
    manual_complete = bool(files) and all(
        os.path.exists(os.path.join(manual_dir, f)) for f in files)
    if not manual_complete:
        hosts = sorted({urlparse(url).hostname for url in url_infos} - {None})
        unreachable = [h for h in hosts if not _host_reachable(h)]
        if unreachable or not hosts:
            raise RunFailure(f"dataset {builder.name!r} is not prepared in "
                             f"{builder.data_dir_root} and cannot be downloaded ("
                             f"{', '.join(unreachable) or 'no download URL'} unreachable); "
                             f"{_offline_advice(builder, files, manual_dir)}")
    with _trusting(url_infos, manual_dir, accept_manual_files):
        try:
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
        except NonMatchingChecksumError as error:
            named = [f for f in files if f in str(error)] or files
            raise RunFailure(
                f"{os.path.join(manual_dir, named[0])} differs from the file TFDS registered "
                f"for {builder.name!r} (another compression of the same data, as Linux "
                f"packages ship it?); if you trust it, re-run with --accept-manual-files"
            ) from None


def _file_name(url: str, info) -> str:
    return info.filename or os.path.basename(urlparse(url).path)


def _offline_advice(builder, files: list[str], manual_dir: str) -> str:
    """What to do offline; notices a --data-dir that points into a dataset's own folder."""
    root = os.path.abspath(builder.data_dir_root)
    if os.path.basename(root) == builder.name or os.path.isdir(
            os.path.join(root, str(builder.version))):
        return (f"{root} looks like the dataset's own folder: pass its parent, "
                f"{os.path.dirname(root)}, as --data-dir")
    return (f"on an offline machine put its source files "
            f"({', '.join(files) or 'see the TFDS catalog'}) into {manual_dir} and re-run, "
            f"or copy a prepared {builder.name}/ folder there from `tfds build "
            f"{builder.name} --data_dir DIR` on a machine with internet")


@contextmanager
def _trusting(url_infos: dict, manual_dir: str, accept: bool):
    """With `accept`, TFDS checks the manual files against their own size and sha256
    instead of its registered ones. `url_infos` is TFDS's memoized table for the
    builder's class, so the entries are swapped only for this preparation and restored."""
    original = dict(url_infos)
    if accept:
        for url, info in original.items():
            path = os.path.join(manual_dir, _file_name(url, info))
            if os.path.exists(path):
                url_infos[url] = compute_url_info(path)
    try:
        yield
    finally:
        url_infos.clear()
        url_infos.update(original)


def _host_reachable(host: str) -> bool:
    for port in (443, 80):
        try:
            with socket.create_connection((host, port), timeout=HOST_TIMEOUT_SECONDS):
                return True
        except OSError:
            continue
    return False


def make_dataset(split: Split, batch_size: int, *, shuffle_seed: int | None = None,
                 binarize_seed: int | None = None,
                 epoch: tf.Variable | None = None) -> tf.data.Dataset:
    """Batches of float32 images [B, 28, 28, 1] in [0, 1], prefetched.

    Training randomness is a stateless function of (seed, epoch, batch), with the epoch
    read from the `epoch` variable when an iteration starts; the `TrainingEpoch` callback
    keeps it equal to Keras's epoch. So the order does not depend on how often the dataset
    is iterated: the same on one device and under a tf.distribute strategy (whose Keras
    loop opens one extra iterator to build the model, and whose dataset rewrite re-seeds
    TF's stateful shuffle), and a resumed run continues the uninterrupted run's epochs.

    Args:
        split: the images, held in memory.
        batch_size: examples per batch; the last batch may be smaller.
        shuffle_seed: if set, a fresh permutation every epoch, keyed by (seed, epoch).
        binarize_seed: if set, each pixel becomes a Bernoulli draw with its gray level as
            probability. With `shuffle_seed` (training) the draws are fresh each epoch —
            the dynamic binarization of the IWAE paper; without it they are the same each
            time, a fixed binarization for evaluation.
        epoch: scalar int64 variable holding the epoch being trained (with `shuffle_seed`;
            without one, iterations count as epoch 0).
    """
    images = tf.constant(split.images)
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
        gray = tf.cast(tf.gather(images, batch_indices), tf.float32) * scale
        if binarize_seed is None:
            return gray
        seed = tf.random.experimental.stateless_fold_in(
            tf.stack([tf.constant(binarize_seed, tf.int64), epoch_and_batch[0]]),
            epoch_and_batch[1])
        draws = tf.random.stateless_uniform(tf.shape(gray), seed=seed)
        return tf.cast(draws < gray, tf.float32)

    dataset = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).flat_map(epoch_batches)
    dataset = dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    # flat_map hides the length; Keras needs it to know where an epoch ends.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-size // batch_size)))
    return dataset.prefetch(tf.data.AUTOTUNE)


def datasets_for(config: TrainConfig, splits: dict, epoch: tf.Variable | None = None
                 ) -> tuple:
    """(train, validation, test) tf.data pipelines as this run trains and evaluates on them.

    Training reshuffles (and, with dynamic binarization, redraws pixels) every epoch, keyed
    by `epoch` (see `epoch_variable`, kept current by the `TrainingEpoch` callback);
    validation and test are fixed, so every evaluation of a run sees the same examples.
    """
    binarize = config.seed if config.dynamic_binarization else None
    return (make_dataset(splits["train"], config.batch_size, shuffle_seed=config.seed,
                         binarize_seed=binarize, epoch=epoch),
            make_dataset(splits["validation"], config.batch_size, binarize_seed=binarize),
            make_dataset(splits["test"], config.batch_size, binarize_seed=binarize))


def epoch_variable() -> tf.Variable:
    """The epoch variable `make_dataset` reads; `TrainingEpoch` sets it during `fit`."""
    return tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")


def images_of(dataset: tf.data.Dataset) -> np.ndarray:
    """All images of a finite `make_dataset` pipeline, in its order, as one array."""
    return np.concatenate([batch.numpy() for batch in dataset])
