"""Specification of keras_vae/data/image_files.py: a file built to hurt is refused in one line
before it is decoded, and never blocks."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from keras_vae.data.image_files import ImageRefused, guarded_decoding, open_image
from tests import hostile_images

QUICK = 2.0
"""Seconds within which every refusal here comes: decoding any of these files whole would
take far longer or, for the pipe, forever."""


def _refusal(path, max_pixels=50_000_000) -> tuple[str, float]:
    start = time.monotonic()
    with guarded_decoding(), pytest.raises(ImageRefused) as refused:
        with open_image(path, max_pixels) as image:
            image.load()
    return str(refused.value), time.monotonic() - start


@pytest.mark.parametrize("make, said", [
    (lambda d: hostile_images.png_declaring(d / "bomb.png", 16_000, 16_000),
     "bomb.png: 16000×16000 is 256.0 million pixels, above the limit of 50.0 million "
     "(--max-image-pixels raises it)"),
    (lambda d: hostile_images.png_declaring(d / "large.png", 10_000, 10_000),
     "large.png: 10000×10000 is 100.0 million pixels, above the limit of 50.0 million"),
    (lambda d: hostile_images.png_with_text_bomb(d / "text.png"),
     "text.png: cannot read this image (a compressed text chunk inflates to more than "
     "Pillow's 1 MB limit)"),
    (lambda d: hostile_images.truncated_png(d / "cut.png"),
     "cut.png: cannot read this image (the file is cut short)"),
    (lambda d: hostile_images.named_pipe(d / "pipe.png"),
     "pipe.png: not a regular file (a named pipe); remove it"),
    (lambda d: (d / "notes.png").write_text("shopping list") and str(d / "notes.png"),
     "notes.png: cannot read this image (cannot identify image file"),
])
def test_each_hostile_file_is_one_line_naming_it_quickly(tmp_path, make, said):
    path = make(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no library warning may reach the user
        message, seconds = _refusal(path)
    assert said in message and message.startswith(str(tmp_path))
    assert "\n" not in message and seconds < QUICK


def test_the_limit_counts_declared_pixels_and_can_be_raised(tmp_path):
    path = hostile_images.png_declaring(tmp_path / "wide.png", 3_000, 2_000, rows_of_zeros=2000)
    message, _ = _refusal(path, max_pixels=5_999_999)
    assert "3000×2000 is 6.0 million pixels, above the limit of 6.0 million" in message
    with guarded_decoding(), open_image(path, max_pixels=6_000_000) as image:
        image.load()
        assert image.size == (3_000, 2_000)


def test_pillows_own_limit_is_restored_after_the_block(tmp_path):
    before = Image.MAX_IMAGE_PIXELS
    path = hostile_images.ordinary_pngs(tmp_path, count=1)[0]
    with guarded_decoding():
        assert Image.MAX_IMAGE_PIXELS is None
        with open_image(path) as image:
            assert np.asarray(image).shape == (28, 28)
    assert Image.MAX_IMAGE_PIXELS == before


def test_a_link_to_a_device_is_not_a_regular_file(tmp_path):
    os.symlink("/dev/zero", tmp_path / "zero.png")
    message, seconds = _refusal(tmp_path / "zero.png")
    assert "zero.png: not a regular file (a character device)" in message and seconds < QUICK
