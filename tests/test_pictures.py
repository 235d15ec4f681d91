"""Specification of keras_vae/measure/pictures.py: grids place each image where expected, in the
data's own colours."""

from __future__ import annotations

import numpy as np
from PIL import Image

from keras_vae.measure.pictures import (
    LABEL_MARGIN,
    UPSCALE,
    save_grid,
    save_latent_scatter,
    save_reconstructions,
    tile,
)


def test_tile_places_images_row_major_with_white_gaps():
    images = np.zeros((3, 28, 28, 1), np.float32)
    images[2] = 0.5
    canvas = tile(images, rows=2, cols=2, gap=2)
    assert canvas.shape == (58, 58, 1)
    assert (canvas[30:, :28] == 0.5).all()  # image 2 → row 1, column 0
    assert canvas[:28, :28].max() == 0.0 and (canvas[30:, 30:] == 1.0).all()  # empty cell
    assert (canvas[28:30] == 1.0).all()


def test_grayscale_grids_show_pixels_as_the_data_do(tmp_path):
    images = np.zeros((64, 28, 28, 1), np.float32)
    images[:, 10:18, 10:18] = 1.0
    save_grid(images, str(tmp_path / "grid.png"))
    picture = Image.open(tmp_path / "grid.png")
    pixels = np.asarray(picture)
    assert picture.mode == "L" and pixels.shape == (UPSCALE * (8 * 30 - 2),) * 2
    assert pixels[0, 0] == 0 and pixels[UPSCALE * 14, UPSCALE * 14] == 255


def test_colour_images_give_an_rgb_grid(tmp_path):
    images = np.zeros((4, 8, 10, 3), np.float32)
    images[..., 0] = 1.0  # red
    save_grid(images, str(tmp_path / "grid.png"))
    picture = Image.open(tmp_path / "grid.png")
    assert picture.mode == "RGB" and picture.size == (UPSCALE * 22, UPSCALE * 18)
    assert picture.getpixel((0, 0)) == (255, 0, 0)


def test_reconstructions_alternate_input_and_output_rows(tmp_path):
    inputs, outputs = np.zeros((20, 28, 28, 1)), np.full((20, 28, 28, 1), 0.5)
    save_reconstructions(inputs, outputs, str(tmp_path / "r.png"), per_row=16)
    pixels = np.asarray(Image.open(tmp_path / "r.png"))
    grid, row = pixels[:, LABEL_MARGIN:], UPSCALE * 30
    assert [grid[r * row + 5, 5] for r in range(4)] == [0, 128, 0, 128]
    assert grid[3 * row + 5, UPSCALE * 30 * 5 + 5] == 0  # blank: only 4 outputs in pair 2
    margin = pixels[:, :LABEL_MARGIN]
    assert all((margin[r * row:(r + 1) * row] < 128).any() for r in range(4))  # row names


def test_the_latent_scatter_names_the_classes_in_its_legend(tmp_path, monkeypatch):
    import matplotlib.axes

    legends = []
    legend = matplotlib.axes.Axes.legend
    monkeypatch.setattr(matplotlib.axes.Axes, "legend", lambda self, *a, **k: legends.append(
        [t.get_label() for t in self.collections]) or legend(self, *a, **k))
    z = np.random.default_rng(0).standard_normal((30, 2))
    save_latent_scatter(z, np.arange(30) % 3, str(tmp_path / "s.png"), ("cat", "dog", "owl"))
    assert legends == [["cat", "dog", "owl"]]
    assert Image.open(tmp_path / "s.png").size[0] > 100


def test_curves_of_a_single_epoch_show_its_points(tmp_path):
    """After one epoch each panel still shows the training and validation points (as
    markers in matplotlib's first two colours), on the epoch tick 1."""
    from keras_vae.measure.pictures import save_curves

    row = {"epoch": 1, "loss": 170.0, "val_loss": 131.0, "reconstruction": 155.0,
           "val_reconstruction": 110.0, "kl": 15.0, "val_kl": 21.0}
    save_curves([row], str(tmp_path / "curves.png"))
    pixels = np.asarray(Image.open(tmp_path / "curves.png").convert("RGB")).astype(int)
    pixels = pixels[pixels.shape[0] // 7:]  # below the legend, which has both colours
    for colour in ((31, 119, 180), (255, 127, 14)):  # training, validation
        near = np.abs(pixels - colour).sum(axis=-1) < 30
        assert near.sum() > 3 * 20, colour  # a marker in each of the three panels
