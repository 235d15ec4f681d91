"""`python -m keras_vae.photo_crops OUT`: a data set of colour crops of real photographs,
made offline from Debian's `mate-backgrounds` package (`apt install mate-backgrounds`).

Its 14 pictures (of the three sizes of Elephants, the smallest), each scaled to 160 pixels
on its short side (Lanczos), `--per-photo` crops of `--size` at random positions from each
(NumPy seed `--seed`), labelled by photograph: written as one npz (`images`, `labels`,
`label_names`; `--dataset npz:OUT.npz`) or, with `--folder`, as PNG files in a subfolder
per photograph (`--dataset folder:OUT`), as a user's own pictures would be. docs/spatial.md
and docs/results.md measure models on the sets it makes; keras_vae/ood_sets.py cuts its
photographs the same way.
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np
from PIL import Image

from keras_vae.cli import ArgumentParser, RunFailure, UsageError, positive_int, run_command

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


def _write_folder(out: str, images, labels, names) -> None:
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        subfolder = os.path.join(out, names[label])
        os.makedirs(subfolder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(subfolder, f"{index:06d}.png"))


def main(argv) -> None:
    parser = ArgumentParser(prog="python -m keras_vae.photo_crops",
                    description="Cut a data set of colour crops from the photographs of "
                                "Debian's mate-backgrounds package.")
    parser.add_argument("out", help="the npz file to write (with --folder: the folder)")
    parser.add_argument("--size", type=positive_int, default=32,
                        help="side of the square crops (default: %(default)s)")
    parser.add_argument("--per-photo", type=positive_int, default=3000,
                        help="crops from each of the 14 photographs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="NumPy seed (default: %(default)s)")
    parser.add_argument("--folder", action="store_true",
                        help="write PNG files in a subfolder per photograph, not an npz")
    parser.add_argument("--photos", default=PHOTO_FOLDER,
                        help="where the JPEGs are (default: %(default)s)")
    args = parser.parse_args(argv)
    if os.path.exists(args.out):
        raise UsageError(f"{args.out} exists; name another path")
    images, labels, names = photo_crops(args.size, args.per_photo, args.seed, args.photos)
    if args.folder:
        _write_folder(args.out, images, labels, names)
    else:
        np.savez(args.out, images=images, labels=labels, label_names=np.array(names))
    print(f"{len(images)} crops of {args.size}×{args.size} from {len(names)} photographs "
          f"→ {args.out}")


if __name__ == "__main__":
    sys.exit(run_command(main, "keras_vae.photo_crops"))
