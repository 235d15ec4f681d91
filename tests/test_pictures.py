"""Specification of keras_vae/pictures.py: grids place each image where expected."""

from __future__ import annotations

import numpy as np
from PIL import Image

from keras_vae.pictures import LABEL_MARGIN, save_grid, save_reconstructions
from serving.sample import UPSCALE, tile


def test_tile_places_images_row_major_with_gaps():
    images = np.zeros((3, 28, 28, 1), np.float32)
    images[2] = 1.0
    canvas = tile(images, rows=2, cols=2, gap=2)
    assert canvas.shape == (58, 58)
    assert canvas[30:, :28].min() == 1.0  # image 2 → row 1, column 0
    assert canvas[:28].max() == 0.0 and canvas[30:, 30:].max() == 0.0


def test_grid_png_has_dark_ink_on_white(tmp_path):
    images = np.zeros((64, 28, 28, 1), np.float32)
    images[:, 10:18, 10:18] = 1.0
    save_grid(images, str(tmp_path / "grid.png"))
    pixels = np.asarray(Image.open(tmp_path / "grid.png"))
    assert pixels.shape == (UPSCALE * (8 * 30 - 2),) * 2
    assert pixels[0, 0] == 255 and pixels[UPSCALE * 14, UPSCALE * 14] == 0


def test_reconstructions_alternate_input_and_output_rows(tmp_path):
    inputs, outputs = np.zeros((20, 28, 28, 1)), np.ones((20, 28, 28, 1))
    save_reconstructions(inputs, outputs, str(tmp_path / "r.png"), per_row=16)
    pixels = np.asarray(Image.open(tmp_path / "r.png"))
    grid, row = pixels[:, LABEL_MARGIN:], UPSCALE * 30
    assert [grid[r * row + 5, 5] for r in range(4)] == [255, 0, 255, 0]
    assert grid[3 * row + 5, UPSCALE * 30 * 5 + 5] == 255  # only 4 outputs in row pair 2
    margin = pixels[:, :LABEL_MARGIN]
    assert all((margin[r * row:(r + 1) * row] < 128).any() for r in range(4))  # row names
