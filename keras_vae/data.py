"""Datasets (TFDS, a folder of images, an .npz file), and the tf.data pipeline that feeds
training.

Splits are decoded once into uint8 arrays (a 70,000-image MNIST-sized set is 55 MB), so
each epoch only shuffles indices and gathers batches: the pipeline costs microseconds per
batch and never limits a training step. Pixels become float32 in [0, 1] per batch.

A data set larger than the memory budget (`--memory-budget-mb`, by default a quarter of
the machine's memory) is decoded once into memory-mapped files instead, and batches are
read from them by parallel tf.data workers: the same indices, the same order, the same
pixels as in memory, with the operating system paging images in from disk.

Offline use matters: TFDS retries a failed download for minutes, so before asking TFDS to
download we check within seconds that the dataset's hosts are reachable, and otherwise
fail with one line saying how to prepare the data by hand.
"""

from __future__ import annotations

import dataclasses
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

from keras_vae import sources
from keras_vae.cli import RunFailure, UsageError
from keras_vae.config import SOURCE_PREFIXES, TrainConfig
from keras_vae.memory import default_data_budget_mb

MAX_HOLDOUT = 10_000
HOLDOUT_FRACTION = 5
"""A split a dataset lacks is held out from its training examples: a fifth of them, at
most `MAX_HOLDOUT` (so MNIST's 60,000 give 50,000 / 10,000)."""

HOST_TIMEOUT_SECONDS = 3.0


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

    def as_float(self) -> np.ndarray:
        """The images as float32 pixels in [0, 1]."""
        return self.images.astype(np.float32) / self.pixel_max


def first_examples(split: Split, count: int | None) -> Split:
    """The split's first `count` examples (all of them for None)."""
    if count is None:
        return split
    labels = None if split.labels is None else split.labels[:count]
    return dataclasses.replace(split, images=split.images[:count], labels=labels)


def resolve_data_dir(data_dir: str | None) -> str | None:
    """`--data-dir`, else `TFDS_DATA_DIR`, else None (TFDS's own default)."""
    return data_dir or os.environ.get("TFDS_DATA_DIR") or None


def load_splits(dataset: str, data_dir: str | None = None, max_examples: int | None = None,
                accept_manual_files: bool = False, image_size: tuple[int, int] | None = None,
                split_seed: int = 0, storage: sources.Storage = sources.IN_MEMORY
                ) -> dict[str, Split]:
    """Loads `train`, `validation` and `test` of a dataset, decoded to uint8.

    Args:
        dataset: a TFDS name, `folder:PATH` or `npz:PATH` (see `keras_vae.sources`).
        data_dir: TFDS data directory; see `resolve_data_dir`.
        max_examples: keep only the first N examples of each split (quick runs, tests).
        accept_manual_files: prepare from source files in `downloads/manual/` even when
            their checksums differ from TFDS's registered ones (see `ensure_prepared`).
        image_size: (height, width) to resize every image to; None keeps the data's size.
        split_seed: seed of the permutation that splits a folder or npz file.
        storage: where the images go (memory, or memory-mapped files above a budget).

    Returns:
        {"train": Split, "validation": Split, "test": Split}.
    """
    if dataset.startswith(SOURCE_PREFIXES):
        kind, path = dataset.split(":", 1)
        data = (sources.read_folder(path, image_size, storage) if kind == "folder"
                else sources.read_npz(path, image_size))
        splits = seeded_splits(data, split_seed, max_examples, dataset, storage)
    else:
        splits = _tfds_splits(dataset, data_dir, max_examples, accept_manual_files,
                              image_size, storage)
    return _with_common_scale(splits)


def splits_for(config: TrainConfig, max_examples: int | None = None) -> dict[str, Split]:
    """The splits a run was (or is to be) trained and evaluated on, from its record;
    `max_examples` overrides the record's. Images above the run's memory budget go to
    memory-mapped files in its run directory."""
    return load_splits(config.dataset, config.data_dir, max_examples or config.max_examples,
                       config.accept_manual_files, config.image_size, config.split_seed,
                       storage_for(config))


def storage_for(config: TrainConfig) -> sources.Storage:
    budget = (default_data_budget_mb() if config.memory_budget_mb is None
              else config.memory_budget_mb)
    return sources.Storage(budget_bytes=budget * 2**20, spill_dir=config.out)


def seeded_splits(data: sources.Images, seed: int, max_examples: int | None,
                  dataset: str, storage: sources.Storage = sources.IN_MEMORY
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
    return {name: Split(images=sources.take(data.images, ids[:max_examples], storage, on_disk),
                        labels=None if data.labels is None else data.labels[ids[:max_examples]],
                        pixel_max=255, label_names=data.label_names)
            for name, ids in parts.items()}


def _with_common_scale(splits: dict[str, Split]) -> dict[str, Split]:
    """Every split scaled by the training split's white: 1 for data stored as 0/1."""
    pixel_max = 1 if int(splits["train"].images.max(initial=0)) <= 1 else 255
    return {name: dataclasses.replace(split, pixel_max=pixel_max)
            for name, split in splits.items()}


def _tfds_splits(name: str, data_dir: str | None, max_examples: int | None,
                 accept_manual_files: bool, image_size, storage: sources.Storage
                 ) -> dict[str, Split]:
    builder = _open_builder(name, data_dir)
    label_names = _check_features(builder, image_size)
    ensure_prepared(builder, accept_manual_files)
    split_names = tfds_split_names(builder, max_examples)
    image_shape = _image_shape(builder, image_size)
    examples = sum(builder.info.splits[s].num_examples for s in split_names.values())
    on_disk = storage.on_disk((examples, *image_shape))
    splits = {}
    for split_name, tfds_split in split_names.items():
        try:
            arrays = _to_numpy(builder.as_dataset(split=tfds_split), image_size,
                               storage if on_disk else None)
        except (tf.errors.OpError, OSError, ValueError) as error:
            raise RunFailure(
                f"dataset {name!r} in {builder.data_dir} is damaged or truncated ("
                f"{type(error).__name__} reading {tfds_split}); delete that folder and "
                f"prepare it again") from None
        labels = arrays.get("label") if label_names else None
        splits[split_name] = Split(images=arrays["image"], labels=labels, pixel_max=255,
                                   label_names=label_names)
    return splits


def _open_builder(name: str, data_dir: str | None):
    try:
        return tfds.builder(name, data_dir=resolve_data_dir(data_dir))
    except tfds.core.registered.DatasetNotFoundError:
        raise UsageError(f"unknown dataset {name!r}: give a TFDS name (tfds.list_builders()"
                         f"), folder:PATH or npz:PATH") from None
    except Exception as error:  # TFDS raises many types for unreadable metadata
        raise RunFailure(f"cannot open dataset {name!r} in {resolve_data_dir(data_dir)} "
                         f"({type(error).__name__}); its metadata is damaged: delete its "
                         f"folder and prepare it again") from None


def _check_features(builder, image_size) -> tuple[str, ...]:
    """The class names of a TFDS dataset with an `image` feature (() if it has no
    ClassLabel `label`); one line if it has no images or images of varying size."""
    features = builder.info.features
    names = set(features.keys())
    image = features["image"] if "image" in names else None
    if not isinstance(image, tfds.features.Image):
        raise UsageError(f"dataset {builder.name!r} has no 'image' feature (it has: "
                         f"{', '.join(features.keys())}); keras-vae trains on images")
    if image_size is None and None in image.shape[:2]:
        raise UsageError(f"dataset {builder.name!r} has images of varying size; pass "
                         f"--image-size H,W to resize them")
    label = features["label"] if "label" in names else None
    return tuple(label.names) if isinstance(label, tfds.features.ClassLabel) else ()


def tfds_split_names(builder, max_examples: int | None) -> dict[str, str]:
    """TFDS split strings of train / validation / test: the dataset's own splits where it
    has them, else held out from the end of `train` (test last); each cut to its first
    `max_examples`, so that TFDS reads no more than that."""
    own = builder.info.splits
    total = own["train"].num_examples
    ranges = {}
    for name in ("test", "validation"):
        if name in own:
            ranges[name] = (name, 0, own[name].num_examples)
        else:
            holdout = holdout_size(own["train"].num_examples)
            ranges[name] = ("train", total - holdout, total)
            total -= holdout
    ranges["train"] = ("train", 0, total)
    cap = max_examples or math.inf
    return {name: f"{split}[{start}:{min(stop, start + cap)}]"
            for name, (split, start, stop) in reversed(ranges.items())}


def _image_shape(builder, image_size) -> tuple[int, int, int]:
    height, width, channels = builder.info.features["image"].shape
    return (*(image_size or (height, width)), channels or 3)


def _to_numpy(dataset: tf.data.Dataset, image_size=None,
              spill: sources.Storage | None = None) -> dict[str, np.ndarray]:
    """A TFDS split → {"image": array, ...}, read in large batches, resized if asked;
    with `spill`, the images are written batch by batch into a memory-mapped file.

    (TFDS's own batch_size=-1 sizes the batch from split metadata, which mock datasets
    do not carry; batching here works for real and mock data alike.)
    """
    if image_size is not None:
        dataset = dataset.map(lambda example: {**example, "image": resize_images(
            example["image"], image_size)}, num_parallel_calls=tf.data.AUTOTUNE)
    batches = tfds.as_numpy(dataset.batch(10_000))
    if spill is None:
        batches = list(batches)
        return {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}
    images, others, count = None, [], 0
    for batch in batches:
        if images is None:
            images = spill.new_images((len(dataset), *batch["image"].shape[1:]), True)
        images[count:count + len(batch["image"])] = batch["image"]
        count += len(batch["image"])
        others.append({k: v for k, v in batch.items() if k != "image"})
    return {"image": images[:count],
            **{key: np.concatenate([o[key] for o in others]) for key in others[0]}}


def resize_images(images, image_size):
    """uint8 image(s) → uint8 at (height, width), Lanczos-resampled with antialiasing."""
    resized = tf.image.resize(images, image_size, method="lanczos3", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


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
