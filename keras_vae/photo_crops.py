"""`python -m keras_vae.photo_crops OUT`: a data set of colour crops of real photographs,
made offline from Debian's `mate-backgrounds` package (`apt install mate-backgrounds`).

Its 14 pictures (of the three sizes of Elephants, the smallest), each scaled to 160 pixels
on its short side (Lanczos), `--per-photo` crops of `--size` at random positions from each
(NumPy seed `--seed`), labelled by photograph: written as one npz (`images`, `labels`,
`label_names`; `--dataset npz:OUT.npz`) or, with `--folder`, as PNG files in a subfolder
per photograph (`--dataset folder:OUT`), as a user's own pictures would be. docs/spatial.md
and docs/results.md measure models on the sets it makes; keras_vae/measure/ood_sets.py cuts its
photographs the same way (`keras_vae.data.photos`).
"""

from __future__ import annotations

import os
import sys

import numpy as np
from PIL import Image

from keras_vae.data.photos import PHOTO_FOLDER, photo_crops
from keras_vae.run.cli import ArgumentParser, UsageError, positive_int, run_command


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
