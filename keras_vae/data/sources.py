"""Images from a folder of files or from an .npz file, as uint8 arrays [N, H, W, C].

`--dataset folder:PATH` reads PNG, JPEG, BMP, GIF, WebP and TIFF files; other files it
counts in one line, by extension, and leaves (a phone's HEIC photos, notes). Class
subfolders of PATH (one level) give labels, named after the folders in sorted order;
files directly in PATH are unlabeled (a folder may hold one kind or the other, not both).
Pixels are read as what they are:

- grayscale (modes L, 1, I;16 scaled to 8 bits) → 1 channel; colour (RGB, CMYK, YCbCr) → 3;
- transparent images (RGBA, LA, palette images with transparency) are composited over
  white, as a viewer shows them on a white page; other palette images become RGB, or
  grayscale when every palette colour is gray;
- a folder that mixes grayscale and colour images is read as colour (gray → R = G = B).

All images must share one size, unless `--image-size H,W` resizes them (Lanczos, the one
resizer of every source: `resize`). Sizes and modes are read from the files' headers
first, so a mixed folder is refused before anything is decoded, and the decoded images go
straight into one array: in memory, or, for a data set above the memory budget, a
memory-mapped file (`keras_vae.data.storage`).

`--dataset npz:PATH` reads the arrays `images` (uint8, [N, H, W] or [N, H, W, C]), and
optionally `labels` (integers, [N]) and `label_names` (strings, one per label value). An
.npz file is read into memory whole, whatever its size.

Mistakes in the data are one line naming the file (`RunFailure`, exit 1).
"""

from __future__ import annotations

import collections
import math
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from keras_vae.config import DEFAULT_MAX_IMAGE_PIXELS
from keras_vae.data.image_files import (
    ImageRefused,
    above_the_limit,
    guarded_decoding,
    millions,
    not_regular_files,
    open_image,
)
from keras_vae.data.storage import IN_MEMORY, Storage
from keras_vae.run.cli import RunFailure, UsageError
from keras_vae.run.memory import physical_memory_mb

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
READ_THREADS = 8
"""Pillow decodes outside Python's lock, so threads read a folder in parallel."""


@dataclass(frozen=True)
class Images:
    """A whole data set: uint8 images [N, H, W, C] (in memory or memory-mapped), labels
    [N] or None; for a folder, the file each image came from."""

    images: np.ndarray
    labels: np.ndarray | None
    label_names: tuple[str, ...]
    files: tuple[str, ...] = ()


def check_source_path(dataset: str) -> None:
    """Refuses a `folder:` or `npz:` dataset whose path does not exist, in one line, before
    anything slow starts."""
    kind, _, path = dataset.partition(":")
    if kind == "folder" and not os.path.isdir(path):
        raise UsageError(f"folder:{path}: no such directory; pass a folder of images")
    if kind == "npz" and not os.path.isfile(path):
        raise UsageError(f"npz:{path}: no such file")


# --- folders ---------------------------------------------------------------------------

def read_folder(path: str, image_size: tuple[int, int] | None = None,
                storage: Storage = IN_MEMORY,
                max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
                model_size: tuple[int, int] | None = None) -> Images:
    """Every image under `path` (see the module docstring), resized to `image_size`.
    Files are opened through `keras_vae.data.image_files`: one declaring more than
    `max_pixels` pixels, or unreadable, refuses the folder, naming every such file.
    `model_size`: the size a trained model takes (scoring), which every image must have
    after resizing."""
    files, labels, label_names, left, odd = _list_folder(path)
    if left:
        kinds = ", ".join(f"{kind} ({count})" for kind, count in sorted(left.items()))
        print(f"leaving {left.total()} files that are not images read here "
              f"({', '.join(IMAGE_EXTENSIONS)}): {kinds}", flush=True)
    if odd:
        print(f"leaving {len(odd)} entries that are not regular files (named pipes, devices, "
              f"links to nothing): {', '.join(os.path.relpath(o, path) for o in odd)}",
              flush=True)
    with guarded_decoding(), ThreadPoolExecutor(READ_THREADS) as pool:
        headers = _all_or_refuse(pool.map(_refusal_or(_read_header, max_pixels), files), path)
        sizes = [image_size or size for size, _ in headers]
        _check_one_size(sizes, path, model_size)
        channels = 3 if any(colour for _, colour in headers) else 1
        images = storage.new_images((len(files), *sizes[0], channels))
        where = "a memory-mapped file" if isinstance(images, np.memmap) else "memory"
        print(f"reading {len(files)} images from {path} into {where}", flush=True)
        read = _refusal_or(_read_image, max_pixels, image_size)

        def read_into(index: int):
            picture = read(files[index])
            if not isinstance(picture, ImageRefused):
                images[index] = _as_channels(picture, channels)
            return picture

        _all_or_refuse(pool.map(read_into, range(len(files))), path)
    return Images(images, labels, label_names, tuple(files))


def _refusal_or(read, *args):
    """`read(file, *args)`, or the `ImageRefused` it raised: so that one bad file does not
    stop the others from being checked."""
    def attempt(file: str):
        try:
            return read(file, *args)
        except ImageRefused as refusal:
            return refusal

    return attempt


SHOWN_REFUSALS = 5


def _all_or_refuse(results, path: str) -> list:
    """The results, unless some are `ImageRefused`: then one line naming every bad file
    (the first few with their reasons)."""
    results = list(results)
    refused = [r for r in results if isinstance(r, ImageRefused)]
    if not refused:
        return results
    shown = "; ".join(str(r) for r in refused[:SHOWN_REFUSALS])
    more = (f"; and {len(refused) - SHOWN_REFUSALS} more: "
            f"{', '.join(os.path.basename(r.file) for r in refused[SHOWN_REFUSALS:])}"
            if len(refused) > SHOWN_REFUSALS else "")
    files = "this file" if len(refused) == 1 else f"these {len(refused)} files"
    raise RunFailure(f"folder:{path}: {shown}{more} — remove or replace {files}")


def _list_folder(path: str) -> tuple[list[str], np.ndarray | None, tuple[str, ...],
                                      collections.Counter, list[str]]:
    """(files, labels, label names, other files, odd entries) of a folder of images or of
    class folders; any image that this layout would leave unread is refused, naming where
    it is. Other files: how many files in `path` and its subfolders are not images read
    here, by extension (hidden ones aside), so that none is left out unseen: a phone's
    HEIC photos beside its JPEGs, say. Odd entries: paths that are neither files nor
    folders (a named pipe called `x.png` would block whoever read it)."""
    if not os.path.isdir(path):
        raise UsageError(f"folder:{path}: no such directory; pass a folder of images")
    entries = sorted(os.scandir(path), key=lambda e: e.name)
    loose = [e.path for e in entries if e.is_file() and _is_image(e.name)]
    folders = [e for e in entries if e.is_dir() and not e.name.startswith(".")]
    inside = {f.name: list(os.scandir(f.path)) for f in folders}
    files_in = {name: [e for e in found if e.is_file()] for name, found in inside.items()}
    by_class = {name: sorted(e.path for e in files if _is_image(e.name))
                for name, files in files_in.items()}
    left = collections.Counter(
        os.path.splitext(e.name)[1].lower() or "(no extension)"
        for e in (*entries, *(e for files in files_in.values() for e in files))
        if e.is_file() and not e.name.startswith(".") and not _is_image(e.name))
    odd = not_regular_files([*entries, *(e for found in inside.values() for e in found)])
    nested = {name: count for name, count in
              ((f.name, _images_below(f.path)) for f in folders) if count}
    by_class = {name: files for name, files in by_class.items() if files}
    if loose and (by_class or nested):
        raise RunFailure(f"folder:{path} holds both images and folders of images "
                         f"({', '.join(sorted({*by_class, *nested}))}); move the "
                         f"{len(loose)} loose images into class folders, or point at a "
                         f"folder of one kind")
    if nested:
        where = ", ".join(f"{name}/ ({count})" for name, count in nested.items())
        raise RunFailure(f"folder:{path}: images two or more levels down would not be "
                         f"read: {where}; class folders hold their images directly, so "
                         f"point --dataset at the folder whose subfolders are the classes")
    if not loose and not by_class:
        raise RunFailure(f"folder:{path} has no images ({', '.join(IMAGE_EXTENSIONS)}), "
                         f"neither directly nor in class subfolders")
    if loose:
        return loose, None, (), left, odd
    files = [f for fs in by_class.values() for f in fs]
    labels = np.concatenate([np.full(len(fs), i, np.int64)
                             for i, fs in enumerate(by_class.values())])
    return files, labels, tuple(by_class), left, odd


def _images_below(folder: str) -> int:
    """How many images lie in the subfolders of `folder` (not in `folder` itself)."""
    return sum(sum(map(_is_image, files)) for top, dirs, files in os.walk(folder)
               if top != folder and not os.path.basename(top).startswith("."))


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _read_header(file: str, max_pixels: int) -> tuple[tuple[int, int], bool]:
    """((height, width) as a viewer shows the image, whether it is colour) from the file's
    header, pixels unread. A photo stored sideways with an EXIF orientation of a quarter
    turn shows with height and width swapped."""
    with open_image(file, max_pixels) as image:
        height, width = image.height, image.width
        if image.getexif().get(ORIENTATION_TAG) in QUARTER_TURNS:
            height, width = width, height
        return (height, width), _natural_mode(image, file) == "RGB"


def _read_image(file: str, max_pixels: int, image_size: tuple[int, int] | None
                ) -> np.ndarray:
    """One file → uint8 [H, W] (grayscale) or [H, W, 3] (colour), upright as a viewer
    shows it (its EXIF orientation applied)."""
    with open_image(file, max_pixels) as image:
        image.load()
        picture = _in_natural_mode(ImageOps.exif_transpose(image), file)
    if image_size is not None:
        picture = _resized(picture, image_size)
    return np.asarray(picture, dtype=np.uint8)


def _resized(picture: Image.Image, image_size: tuple[int, int]) -> Image.Image:
    """The picture at (height, width), Lanczos-resampled; the same picture if it fits."""
    height, width = image_size
    if picture.size == (width, height):
        return picture
    return picture.resize((width, height), Image.Resampling.LANCZOS)


ORIENTATION_TAG = 0x0112
QUARTER_TURNS = (5, 6, 7, 8)
"""EXIF orientations whose image is stored a quarter turn from how it shows."""

NATURAL_MODES = {"1": "L", "L": "L", "LA": "L", "I;16": "L", "I;16B": "L", "I;16L": "L",
                 "RGB": "RGB", "RGBA": "RGB", "CMYK": "RGB", "YCbCr": "RGB"}
"""Pillow's pixel modes and what each is read as: grayscale (L) or colour (RGB). Palette
images (P, PA) are colour unless every colour of an opaque palette is gray."""

TRANSPARENT_MODES = ("RGBA", "LA", "PA")


def _natural_mode(image: Image.Image, file: str) -> str:
    """"L" or "RGB": how the image is read (see `NATURAL_MODES`)."""
    if image.mode in ("P", "PA"):
        opaque_gray = (image.mode == "P" and "transparency" not in image.info
                       and _gray_palette(image))
        return "L" if opaque_gray else "RGB"
    if image.mode not in NATURAL_MODES:
        raise ImageRefused(file, f"pixel mode {image.mode} is not supported; save it as "
                                 f"8-bit grayscale or RGB")
    return NATURAL_MODES[image.mode]


def _in_natural_mode(image: Image.Image, file: str) -> Image.Image:
    """The image as L or RGB (`_natural_mode`), transparency composited over white, 16-bit
    gray scaled to 8 bits."""
    mode = _natural_mode(image, file)
    if image.mode in TRANSPARENT_MODES or "transparency" in image.info:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image.convert("RGBA")).convert(mode)
    if image.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).astype(np.uint8))
    return image.convert(mode)


def _gray_palette(image: Image.Image) -> bool:
    """Whether every colour of a palette image's palette is gray (R = G = B)."""
    colours = np.asarray(image.getpalette("RGB") or [], np.uint8).reshape(-1, 3)
    return bool((colours == colours[:, :1]).all())


def _check_one_size(image_sizes: list[tuple[int, int]], path: str,
                    model_size: tuple[int, int] | None = None) -> None:
    sizes = collections.Counter(tuple(size) for size in image_sizes)
    if model_size is not None and set(sizes) != {tuple(model_size)}:
        found = ", ".join(f"{h}×{w} ({n})" for (h, w), n in sizes.most_common())
        raise RunFailure(f"folder:{path} has images of {found}; the run's are "
                         f"{model_size[0]}×{model_size[1]}: score images of that size (the "
                         f"run resizes only if it was trained with --image-size)")
    if len(sizes) > 1:
        found = ", ".join(f"{h}×{w} ({n})" for (h, w), n in sizes.most_common())
        raise RunFailure(f"folder:{path} has images of {len(sizes)} sizes: {found}; "
                         f"pass --image-size H,W to resize them all")


def _as_channels(picture: np.ndarray, channels: int) -> np.ndarray:
    if picture.ndim == 3:
        return picture
    return np.repeat(picture[..., None], channels, axis=-1)


# --- npz files -------------------------------------------------------------------------

def read_npz(path: str, image_size: tuple[int, int] | None = None,
             max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Images:
    """`images`, `labels` and `label_names` from an .npz file (see the module docstring).
    The shape that `images` declares is checked before it is decompressed: an image over
    `max_pixels` pixels, or arrays larger than this machine's memory, are refused."""
    _check_declared_images(path, max_pixels)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            contents = {key: arrays[key] for key in arrays.files}
    except FileNotFoundError:
        raise UsageError(f"npz:{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise RunFailure(f"npz:{path}: cannot read it as an .npz file ({error})") from None
    images = _npz_images(contents, path)
    labels = _npz_labels(contents, len(images), path)
    names = _npz_label_names(contents, labels, path)
    if image_size is not None and images.shape[1:3] != tuple(image_size):
        images = resize(images, image_size)
    return Images(images, labels, names)


def _check_declared_images(path: str, max_pixels: int) -> None:
    """Refuses an npz whose `images` header declares images over `max_pixels` pixels or
    more bytes than physical memory (a small compressed file can declare terabytes).
    Anything unreadable here is left to `np.load`, which names it."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open("images.npy") as member:
            version = np.lib.format.read_magic(member)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(member)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return
    if len(shape) in (3, 4) and shape[1] * shape[2] > max_pixels:
        raise RunFailure(f"npz:{path}: its images are {shape[2]}×{shape[1]}, "
                         f"{millions(shape[1] * shape[2])} pixels each, "
                         f"{above_the_limit(max_pixels)}")
    size_mb = math.prod(shape) * dtype.itemsize / 2**20
    if size_mb > physical_memory_mb():
        raise RunFailure(f"npz:{path}: 'images' declares {list(shape)} {dtype}, "
                         f"{size_mb:,.0f} MB, more than this machine's "
                         f"{physical_memory_mb():,.0f} MB of memory; split it or use a "
                         f"folder of images, which streams")


def _npz_images(contents: dict, path: str) -> np.ndarray:
    if "images" not in contents:
        raise RunFailure(f"npz:{path} has no array 'images' (it has: "
                         f"{', '.join(contents) or 'nothing'})")
    images = contents["images"]
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise RunFailure(f"npz:{path}: 'images' is {images.dtype} of rank {images.ndim}; "
                         f"it must be uint8 [N, H, W] or [N, H, W, C]")
    return images[..., None] if images.ndim == 3 else images


def _npz_labels(contents: dict, examples: int, path: str) -> np.ndarray | None:
    if "labels" not in contents:
        return None
    labels = contents["labels"]
    if labels.shape != (examples,) or not np.issubdtype(labels.dtype, np.integer):
        raise RunFailure(f"npz:{path}: 'labels' is {labels.dtype} {list(labels.shape)}; it "
                         f"must hold one integer per image, [{examples}]")
    if labels.min() < 0:
        raise RunFailure(f"npz:{path}: 'labels' has negative values; use 0 … classes − 1")
    return labels.astype(np.int64)


def _npz_label_names(contents: dict, labels: np.ndarray | None, path: str
                     ) -> tuple[str, ...]:
    if labels is None:
        return ()
    classes = int(labels.max()) + 1
    if "label_names" not in contents:
        return tuple(str(i) for i in range(classes))
    names = tuple(str(n) for n in contents["label_names"])
    if len(names) < classes:
        raise RunFailure(f"npz:{path}: {len(names)} label_names for labels up to "
                         f"{classes - 1}; give one name per label value")
    return names


def resize(images: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """uint8 [N, H, W, C] → uint8 [N, *image_size, C], each image resized with Lanczos."""
    out = np.empty((len(images), *image_size, images.shape[-1]), np.uint8)
    for i, image in enumerate(images):  # a plane at a time: Pillow has no C-channel mode
        out[i] = np.stack([np.asarray(_resized(Image.fromarray(plane), image_size))
                           for plane in np.moveaxis(image, -1, 0)], axis=-1)
    return out
