"""Pictures of decoded images, as the samplers write them: grids, named class rows, and
writing a file in one rename in the format its name asks for. numpy and Pillow only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

if __package__:  # imported as part of the serving package
    from serving.vae_cli import SampleError
else:  # run from the folder that holds sample.py
    from vae_cli import SampleError


UPSCALE = 2
"""Each pixel becomes UPSCALE×UPSCALE screen pixels so small images (28×28) are legible."""

LABEL_MARGIN = 48
"""Least width in pixels of the margin that names the rows of a picture (`named_rows`)."""

SAVE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
"""Pillow formats a picture may be written in, chosen by the --out file's extension."""



def tile(images: np.ndarray, rows: int, cols: int, gap: int = 2) -> np.ndarray:
    """Images [N, H, W, C] in [0, 1] → one canvas [rows·(H+gap)−gap, cols·(W+gap)−gap, C],
    row-major, with white gaps."""
    n, h, w, channels = images.shape
    if n > rows * cols:
        raise ValueError(f"{n} images do not fit a {rows}×{cols} grid")
    canvas = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap, channels), np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = image
    return canvas



def square_grid(images: np.ndarray) -> np.ndarray:
    """The squarest grid that holds all images, e.g. 64 → 8×8."""
    cols = math.ceil(math.sqrt(len(images)))
    return tile(images, math.ceil(len(images) / cols), cols)



def image_format(path: str) -> str:
    """Pillow's format name for the file name's extension (grid.jpg → JPEG), or explains
    which extensions work."""
    extension = os.path.splitext(path)[1].lower()
    formats = Image.registered_extensions()
    if extension not in formats or formats[extension] not in SAVE_FORMATS:
        known = ", ".join(sorted(e for e, f in formats.items() if f in SAVE_FORMATS))
        raise SampleError(f"--out {path}: cannot tell the picture format from "
                          f"{extension or 'a name without extension'!r}; end it in one of "
                          f"{known}")
    return formats[extension]



def to_image(canvas: np.ndarray) -> Image.Image:
    """A canvas [H, W, C] of pixels in [0, 1] as an 8-bit picture, as the data show them
    (1 = white): grayscale for one channel, RGB for three (other channel counts show
    their first channel), each pixel UPSCALE×UPSCALE."""
    pixels = np.round(np.clip(canvas, 0.0, 1.0) * 255).astype(np.uint8)
    if pixels.shape[-1] == 3:
        image = Image.fromarray(pixels, mode="RGB")
    else:
        image = Image.fromarray(pixels[..., 0], mode="L")
    return image.resize((image.width * UPSCALE, image.height * UPSCALE), Image.NEAREST)



def named_rows(canvas: np.ndarray, names: Sequence[str]) -> Image.Image:
    """A canvas of len(names) equal rows (`tile`) as a picture (`to_image`) with each row's
    name written in a white margin on the left, wide enough for the longest name."""
    from PIL import ImageDraw

    grid = to_image(canvas)
    measure = ImageDraw.Draw(grid)
    margin = max(LABEL_MARGIN, 8 + max(int(measure.textlength(n)) for n in names))
    picture = Image.new(grid.mode, (grid.width + margin, grid.height), "white")
    picture.paste(grid, (margin, 0))
    draw, row_height = ImageDraw.Draw(picture), grid.height / len(names)
    for i, name in enumerate(names):
        draw.text((4, (i + 0.5) * row_height), name, fill="black", anchor="lm")
    return picture



def save_picture(canvas: np.ndarray, path: str) -> None:
    """Writes a canvas in [0, 1] as a picture (`to_image`), in one rename."""
    write_image(to_image(canvas), path)



def write_image(image: Image.Image, path: str) -> None:
    """Writes a picture in one rename; PNG unless the file name asks for another format
    (`image_format`)."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                       f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        image.save(tmp, format=image_format(path))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)



def check_writable(path: str) -> None:
    """Refuses an --out that cannot be written, or whose picture format is unknown, before
    any work is done."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise SampleError(f"--out {path} is a directory; pass a file name such as grid.png")
    if not os.path.isdir(directory):
        raise SampleError(f"--out {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK) or (os.path.exists(path)
                                             and not os.access(path, os.W_OK)):
        raise SampleError(f"--out {path} cannot be written (permission denied); choose "
                          f"another path")
    image_format(path)
