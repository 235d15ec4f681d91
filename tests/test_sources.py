"""Specification of keras_vae/data/sources.py: people's own images, read as what they are."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from PIL import Image

from keras_vae.data.sources import read_folder, read_npz
from keras_vae.data.storage import Storage
from keras_vae.run.cli import RunFailure, UsageError
from tests import hostile_images


def _save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode).save(path)


def test_class_folders_give_labels_named_after_them(tmp_path):
    for name, value in (("cat", 10), ("dog", 200)):
        for i in range(3):
            _save(tmp_path / name / f"{i}.png", np.full((6, 5), value + i))
    data = read_folder(str(tmp_path))
    assert data.images.shape == (6, 6, 5, 1) and data.images.dtype == np.uint8
    assert data.label_names == ("cat", "dog") and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.images[4, 0, 0, 0] == 201


def test_a_folder_above_the_memory_budget_is_decoded_into_a_memory_mapped_file(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        _save(tmp_path / "in" / f"{i}.png", rng.integers(0, 256, (6, 5, 3)))
    in_memory = read_folder(str(tmp_path / "in"))
    mapped = read_folder(str(tmp_path / "in"), storage=Storage(500, str(tmp_path / "spill")))
    assert not isinstance(in_memory.images, np.memmap)  # 540 bytes: within the default
    assert isinstance(mapped.images, np.memmap)
    np.testing.assert_array_equal(mapped.images, in_memory.images)
    assert os.listdir(tmp_path / "spill") == []  # the file has no name: nothing to clean


def test_loose_images_are_unlabeled_and_grayscale_joins_colour_as_rgb(tmp_path):
    _save(tmp_path / "a.png", np.full((4, 4), 100))
    _save(tmp_path / "b.jpg", np.full((4, 4, 3), (255, 0, 0)))
    data = read_folder(str(tmp_path))
    assert data.labels is None and data.label_names == ()
    assert data.images.shape == (2, 4, 4, 3)
    assert data.images[0, 0, 0].tolist() == [100, 100, 100]


def test_webp_and_tiff_are_read_and_other_files_are_counted_not_dropped_unseen(
        tmp_path, capsys):
    for i, suffix in enumerate((".png", ".webp", ".tif", ".tiff", ".JPG")):
        _save(tmp_path / "shoe" / f"{i}{suffix}", np.full((4, 4, 3), (40 * i, 0, 255)))
    for name in ("IMG_1.HEIC", "IMG_2.heic", "notes.txt", "README", ".DS_Store"):
        (tmp_path / "shoe" / name).write_bytes(b"not an image")
    data = read_folder(str(tmp_path))
    assert data.images.shape == (5, 4, 4, 3)  # WebP has no grayscale: RGB throughout
    assert np.abs(data.images[:, 0, 0, 0].astype(int) - [0, 40, 80, 120, 160]).max() <= 2
    notice = capsys.readouterr().out.splitlines()[0]
    assert notice.startswith("leaving 4 files that are not images read here")
    assert notice.endswith(": (no extension) (1), .heic (2), .txt (1)")  # hidden: not counted


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent on the left half
    rgba[:, 2:, 3] = 255
    _save(tmp_path / "x.png", rgba, "RGBA")
    image = read_folder(str(tmp_path)).images[0]
    assert image[0, 0].tolist() == [255, 255, 255] and image[0, 3].tolist() == [255, 0, 0]


def test_mixed_sizes_are_listed_unless_resized(tmp_path):
    for i, size in enumerate([(8, 8), (8, 8), (10, 6)]):
        _save(tmp_path / f"{i}.png", np.zeros(size))
    with pytest.raises(RunFailure, match=r"2 sizes: 8×8 \(2\), 10×6 \(1\); pass --image-size"):
        read_folder(str(tmp_path))
    assert read_folder(str(tmp_path), image_size=(5, 7)).images.shape == (3, 5, 7, 1)


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "has no images"),
    (lambda p: (p / "x.png").write_bytes(b"not an image"), "x.png: cannot read this image"),
    (lambda p: (_save(p / "c" / "1.png", np.zeros((2, 2))), _save(p / "2.png", np.zeros((2, 2)))),
     "holds both images and folders of images [(]c[)]"),
    (lambda p: (_save(p / "faces" / "1.png", np.zeros((2, 2))),
                _save(p / "clothes" / "shirt" / "2.png", np.zeros((2, 2))),
                _save(p / "clothes" / "coat" / "3.png", np.zeros((2, 2)))),
     r"images two or more levels down would not be read: clothes/ \(2\); class folders"),
    (lambda p: (_save(p / "a.png", np.zeros((2, 2))), _save(p / "b" / "c" / "d.png",
                                                            np.zeros((2, 2)))),
     r"holds both images and folders of images \(b\)"),
])
def test_bad_folders_are_one_line_naming_the_problem(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(RunFailure, match=message) as error:
        read_folder(str(tmp_path))
    assert "\n" not in str(error.value)


def _sideways_jpeg(path, pixels: np.ndarray, orientation: int) -> None:
    """A JPEG stored as `pixels` whose EXIF says to show it turned (a phone photo)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels.astype(np.uint8)).save(path, exif=exif, quality=100)


def test_a_photo_stored_sideways_is_read_upright_as_viewers_show_it(tmp_path):
    """Twelve 24×16 images and one JPEG stored 16×24 with EXIF orientation 6 (turn a
    quarter clockwise to show): one size, and the JPEG's stored top row is its right
    column, as every viewer shows it."""
    for i in range(12):
        _save(tmp_path / f"{i:02}.png", np.full((24, 16, 3), 90))
    stored = np.zeros((16, 24, 3))
    stored[0] = 255  # the stored top row, white
    _sideways_jpeg(tmp_path / "phone.jpg", stored, orientation=6)
    data = read_folder(str(tmp_path))
    assert data.images.shape == (13, 24, 16, 3)
    upright = data.images[-1].mean(axis=-1)
    assert upright[:, -1].min() > 200 and upright[:, :-3].max() < 60


def test_a_truncated_image_is_named(tmp_path):
    _save(tmp_path / "whole.png", np.random.default_rng(0).integers(0, 255, (32, 32)))
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    with pytest.raises(RunFailure, match="cut.png: cannot read this image"):
        read_folder(str(tmp_path))


def test_npz_arrays_with_labels_and_names(tmp_path):
    path = str(tmp_path / "d.npz")
    np.savez(path, images=np.zeros((4, 3, 2), np.uint8), labels=np.array([0, 1, 1, 0]),
             label_names=np.array(["no", "yes"]))
    data = read_npz(path)
    assert data.images.shape == (4, 3, 2, 1) and data.label_names == ("no", "yes")
    np.savez(path, images=np.zeros((4, 3, 2, 3), np.uint8))
    assert read_npz(path, image_size=(6, 4)).images.shape == (4, 6, 4, 3)


@pytest.mark.parametrize("arrays, message", [
    ({"pixels": np.zeros((2, 2, 2), np.uint8)}, "has no array 'images'"),
    ({"images": np.zeros((2, 2, 2), np.float32)}, "must be uint8"),
    ({"images": np.zeros((2, 2), np.uint8)}, "must be uint8 \\[N, H, W\\]"),
    ({"images": np.zeros((2, 2, 2), np.uint8), "labels": np.zeros(3, int)},
     "one integer per image, \\[2\\]"),
    ({"images": np.zeros((2, 2, 2), np.uint8), "labels": np.array([0, 2]),
      "label_names": np.array(["a", "b"])}, "2 label_names for labels up to 2"),
])
def test_bad_npz_files_are_one_line(tmp_path, arrays, message):
    path = str(tmp_path / "d.npz")
    np.savez(path, **arrays)
    with pytest.raises(RunFailure, match=message):
        read_npz(path)


def test_missing_paths_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such directory"):
        read_folder(str(tmp_path / "nope"))
    with pytest.raises(UsageError, match="no such file"):
        read_npz(str(tmp_path / "nope.npz"))


def test_a_folder_with_hostile_files_is_refused_naming_every_one(tmp_path, capsys):
    """Forty ordinary PNGs, a pixel bomb, a 100-megapixel PNG, a text-chunk bomb, a cut
    file, a named pipe and a link to a device: one line names the four bad images, the
    pipe and the device are passed over and listed, and nothing waits."""
    hostile_images.ordinary_pngs(tmp_path)
    hostile_images.png_declaring(tmp_path / "bomb.png", 16_000, 16_000)
    hostile_images.png_declaring(tmp_path / "large.png", 10_000, 10_000)
    hostile_images.png_with_text_bomb(tmp_path / "text.png")
    hostile_images.truncated_png(tmp_path / "cut.png")
    hostile_images.named_pipe(tmp_path / "pipe.png")
    os.symlink("/dev/zero", tmp_path / "zero.png")
    start = time.monotonic()
    with pytest.raises(RunFailure) as refused:
        read_folder(str(tmp_path))
    assert time.monotonic() - start < 10
    message = str(refused.value)
    assert "\n" not in message and message.endswith("remove or replace these 4 files")
    for name in ("bomb.png: 16000×16000", "large.png: 10000×10000", "text.png: cannot read",
                 "cut.png: cannot read"):
        assert name in message
    assert ("leaving 2 entries that are not regular files (named pipes, devices, links to "
            "nothing): pipe.png, zero.png") in capsys.readouterr().out


def test_more_bad_files_than_shown_are_all_named(tmp_path):
    hostile_images.ordinary_pngs(tmp_path, count=3)
    for i in range(7):
        hostile_images.truncated_png(tmp_path / f"cut{i}.png")
    with pytest.raises(RunFailure, match=r"cut4.png: cannot read this image \(the file is "
                                         r"cut short\); and 2 more: cut5.png, cut6.png — "
                                         r"remove or replace these 7 files"):
        read_folder(str(tmp_path))


def test_npz_images_over_the_pixel_limit_are_refused_before_they_are_read(tmp_path):
    path = str(tmp_path / "d.npz")
    np.savez_compressed(path, images=np.zeros((2, 3_000, 2_000), np.uint8))
    with pytest.raises(RunFailure, match=r"its images are 2000×3000, 6.0 million pixels "
                                         r"each, above the limit of 5.0 million"):
        read_npz(path, max_pixels=5_000_000)
    assert read_npz(path, max_pixels=6_000_000).images.shape == (2, 3_000, 2_000, 1)
