"""The development sets of out-of-distribution detection: images a model of Fashion-MNIST
should flag, each a known trap or a plain case, all made offline.

- `digits`: binarized MNIST's test digits as 8-bit (0/255): simpler images than the
  model's own, which a likelihood finds *more* likely (Nalisnick et al. 2019);
- `upside-down`: the model's own test images flipped top to bottom: the same pixel
  statistics, other semantics (the hard case; published methods reach 0.75-0.89);
- `inverted`: its test images as negatives, 255 − x;
- `noise`: uniform noise, every pixel 0…255 equally likely;
- `photos`: patches of photographs, cut from the JPEGs of Debian's `mate-backgrounds`
  package (`apt install mate-backgrounds`; /usr/share/backgrounds/mate/**/*.jpg): each
  picture in the model's channels, scaled to 160 pixels on its short side (Lanczos),
  crops of the model's size at seeded random positions, as many from each.

Every set is uint8 [N, H, W, C] on the 0…255 scale, seeded, `count` images at most.
"""

from __future__ import annotations

import numpy as np

from keras_vae.data.photos import PHOTO_FOLDER, crops, photographs, scaled_pixels


def photo_patches(image_shape, count: int, seed: int = 0, folder: str = PHOTO_FOLDER
                  ) -> np.ndarray:
    """`count` crops of `image_shape` (H, W, C) from the photographs under `folder`
    (`keras_vae.photo_crops`), as many from each, in a seeded order."""
    files = photographs(folder)
    height, width, channels = image_shape
    rng = np.random.default_rng(seed)
    per_file = -(-count // len(files))
    patches = [crops(scaled_pixels(file, channels, height, width), per_file, height, width,
                     rng) for file in files]
    patches = np.concatenate(patches)
    return patches[rng.permutation(len(patches))[:count]]


def development_sets(inside: np.ndarray, digits: np.ndarray | None, count: int,
                     seed: int = 0, photo_folder: str = PHOTO_FOLDER
                     ) -> dict[str, np.ndarray]:
    """{set name: uint8 images}: the model's own test images `inside` transformed, noise,
    patches of the photographs under `photo_folder` and, when given (28×28 grayscale
    models), `digits` on 0…255."""
    rng = np.random.default_rng(seed)
    inside = inside[:count]
    sets = {"upside-down": inside[:, ::-1].copy(), "inverted": 255 - inside,
            "noise": rng.integers(0, 256, inside.shape, dtype=np.uint8),
            "photos": photo_patches(inside.shape[1:], len(inside), seed, photo_folder)}
    if digits is not None:
        sets = {"digits": digits[:count], **sets}
    return sets
