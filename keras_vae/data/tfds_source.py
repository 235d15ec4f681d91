"""TFDS image datasets: prepared, or fetched, or explained when they cannot be.

Offline use matters: TFDS retries a failed download for minutes, so before asking TFDS to
download we check within seconds that the dataset's hosts are reachable, and otherwise
fail with one line saying how to prepare the data by hand. A name TFDS does not know is
answered with the closest names it does know.
"""

from __future__ import annotations

import difflib
import math
import os
import socket
from collections.abc import Callable
from contextlib import contextmanager
from urllib.parse import urlparse

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download.checksums import compute_url_info
from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

from keras_vae.data.sources import resize
from keras_vae.data.storage import Storage
from keras_vae.run.cli import RunFailure, UsageError

HOST_TIMEOUT_SECONDS = 3.0


def resolve_data_dir(data_dir: str | None) -> str | None:
    """`--data-dir`, else `TFDS_DATA_DIR`, else None (TFDS's own default)."""
    return data_dir or os.environ.get("TFDS_DATA_DIR") or None


def tfds_splits(name: str, data_dir: str | None, max_examples: int | None,
                accept_manual_files: bool, image_size, storage: Storage,
                holdout_size: Callable[[int], int]) -> tuple[dict, tuple[str, ...]]:
    """({"train" | "validation" | "test": (uint8 images [N, H, W, C], labels [N] or
    None)}, class names) of a TFDS image dataset, prepared first if need be. A split the
    dataset lacks takes `holdout_size(train examples)` from the end of its training split.
    """
    builder = _open_builder(name, data_dir)
    label_names = _check_features(builder, image_size)
    ensure_prepared(builder, accept_manual_files)
    split_names = tfds_split_names(builder, max_examples, holdout_size)
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
                f"prepare it again") from error
        splits[split_name] = (arrays["image"], arrays.get("label") if label_names else None)
    return splits, label_names


def _open_builder(name: str, data_dir: str | None):
    try:
        return tfds.builder(name, data_dir=resolve_data_dir(data_dir))
    except tfds.core.registered.DatasetNotFoundError as error:
        raise _unknown(name) from error
    except ValueError as error:
        if "Parsing builder name string" in str(error):  # not a name TFDS could know
            raise _unknown(name) from error
        raise _damaged(name, data_dir, error) from error
    except Exception as error:  # TFDS raises many types for unreadable metadata
        raise _damaged(name, data_dir, error) from error


def _unknown(name: str) -> UsageError:
    """The line for a dataset name TFDS does not know, with the closest ones it does."""
    close = difflib.get_close_matches(name.replace("-", "_").lower(), tfds.list_builders(),
                                      n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return UsageError(f"unknown dataset {name!r}: {hint}give a TFDS name "
                      f"(tfds.list_builders()), folder:PATH or npz:PATH")


def _damaged(name: str, data_dir: str | None, error: Exception) -> RunFailure:
    return RunFailure(f"cannot open dataset {name!r} in {resolve_data_dir(data_dir)} "
                      f"({type(error).__name__}); its metadata is damaged: delete its folder "
                      f"and prepare it again (--debug shows the error)")


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


def tfds_split_names(builder, max_examples: int | None,
                     holdout_size: Callable[[int], int]) -> dict[str, str]:
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
              spill: Storage | None = None) -> dict[str, np.ndarray]:
    """A TFDS split → {"image": array, ...}, read in large batches, resized if asked (by
    the resizer of every source, `keras_vae.data.sources.resize`); with `spill`, the images
    are written batch by batch into a memory-mapped file.

    (TFDS's own batch_size=-1 sizes the batch from split metadata, which mock datasets
    do not carry; batching here works for real and mock data alike.)
    """
    batches = (batch if image_size is None else {**batch, "image": resize(batch["image"],
                                                                         image_size)}
               for batch in tfds.as_numpy(dataset.batch(10_000)))
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
