"""Colour crops of real photographs, made offline from Debian's `mate-backgrounds`
package (`apt install mate-backgrounds`): its 14 pictures (of the three sizes of
Elephants, the smallest), each scaled to 160 pixels on its short side (Lanczos), cropped
at random positions. `python -m keras_vae.photo_crops` writes such a set;
`keras_vae.measure.ood_sets` cuts its photographs the same way.
"""

from __future__ import annotations

import glob
import os

import numpy as np
from PIL import Image

from keras_vae.run.cli import RunFailure

PHOTO_FOLDER = "/usr/share/backgrounds/mate"
PHOTO_SHORT_SIDE = 160
LARGER_COPIES = ("Elephants_3840x2160.jpg", "Elephants_5640x3172.jpg")
"""The package's larger copies of one picture, left out so that each picture counts once."""


def photographs(folder: str = PHOTO_FOLDER) -> list[str]:
    files = sorted(f for f in glob.glob(os.path.join(folder, "**", "*.jpg"), recursive=True)
                   if os.path.basename(f) not in LARGER_COPIES)
    if not files:
        raise RunFailure(f"no photographs under {folder}: apt install mate-backgrounds")
    return files


def scaled_pixels(file: str, channels: int, height: int, width: int) -> np.ndarray:
    """The picture in `channels` (3: RGB, 1: gray), scaled to `PHOTO_SHORT_SIDE` on its
    short side (or more, to hold a crop of height × width): uint8 [h, w, channels]."""
    with Image.open(file) as picture:
        picture = picture.convert("RGB" if channels == 3 else "L")
        scale = max(PHOTO_SHORT_SIDE / min(picture.size), height / picture.height,
                    width / picture.width)
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)),
                                 Image.Resampling.LANCZOS)
    return np.asarray(picture).reshape(picture.height, picture.width, channels)


def crops(pixels: np.ndarray, count: int, height: int, width: int, rng) -> np.ndarray:
    """`count` crops of height × width at random positions: uint8 [count, height, width, C]."""
    tops = rng.integers(0, pixels.shape[0] - height + 1, count)
    lefts = rng.integers(0, pixels.shape[1] - width + 1, count)
    return np.stack([pixels[t:t + height, s:s + width] for t, s in zip(tops, lefts,
                                                                          strict=True)])


def photo_crops(size: int, per_photo: int, seed: int = 0, folder: str = PHOTO_FOLDER
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images uint8 [14·per_photo, size, size, 3], labels, the photographs' names)."""
    rng = np.random.default_rng(seed)
    files = photographs(folder)
    images = [crops(scaled_pixels(f, 3, size, size), per_photo, size, size, rng)
              for f in files]
    labels = np.repeat(np.arange(len(files)), per_photo)
    names = [os.path.splitext(os.path.basename(f))[0] for f in files]
    return np.concatenate(images), labels, names
