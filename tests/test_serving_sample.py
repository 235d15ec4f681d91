"""Specification of serving/sample.py, the edge sampler (numpy + onnxruntime + Pillow)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import venv

import numpy as np
import pytest
from PIL import Image

from serving import sample
from serving.sample import MAX_IMAGES, UPSCALE, SampleError

REQUIREMENTS_EDGE = os.path.join(os.path.dirname(sample.__file__), "requirements-edge.txt")


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _cells(rows: int, cols: int) -> tuple[int, int]:
    """PNG (width, height) of a rows×cols grid of 28-pixel images with 2-pixel gaps."""
    return UPSCALE * (cols * 30 - 2), UPSCALE * (rows * 30 - 2)


def test_draws_a_square_grid_reproducibly(small_export, tmp_path):
    decoder = small_export["paths"]["decoder_onnx"]
    for name, seed in (("a.png", 0), ("b.png", 0), ("c.png", 1)):
        sample.main([decoder, "--n", "64", "--seed", str(seed), "--out", str(tmp_path / name)])
    assert Image.open(tmp_path / "a.png").size == _cells(8, 8)
    np.testing.assert_array_equal(_pixels(tmp_path / "a.png"), _pixels(tmp_path / "b.png"))
    assert not np.array_equal(_pixels(tmp_path / "a.png"), _pixels(tmp_path / "c.png"))


def test_latent_size_comes_from_the_model(small_export):
    _, latent_dim = sample.load_decoder(small_export["paths"]["decoder_onnx"])
    assert latent_dim == 6


def test_latent_file_is_decoded_as_given(small_export, tmp_path):
    decoder = small_export["paths"]["decoder_onnx"]
    z = sample.prior_latents(5, 6, seed=9)
    np.save(tmp_path / "z.npy", z)
    sample.main([decoder, "--latent-file", str(tmp_path / "z.npy"), "--out",
                 str(tmp_path / "from_file.png")])
    sample.main([decoder, "--n", "5", "--seed", "9", "--out", str(tmp_path / "drawn.png")])
    np.testing.assert_array_equal(_pixels(tmp_path / "from_file.png"),
                                  _pixels(tmp_path / "drawn.png"))


def test_interpolation_is_one_row_between_two_seeded_latents(small_export, tmp_path):
    z = sample.interpolation_latents(7, 6, seed=3)
    start, end = sample.prior_latents(2, 6, seed=3)
    np.testing.assert_allclose(z[0], start)
    np.testing.assert_allclose(z[-1], end)
    np.testing.assert_allclose(z[3], (start + end) / 2, atol=1e-6)
    sample.main([small_export["paths"]["decoder_onnx"], "--interpolate", "--n", "7",
                 "--seed", "3", "--out", str(tmp_path / "row.png")])
    assert Image.open(tmp_path / "row.png").size == _cells(1, 7)


def test_int8_model_with_one_thread_draws_nearly_the_same_images(small_export, tmp_path):
    paths = small_export["paths"]
    fp32, _ = sample.load_decoder(paths["decoder_onnx"])
    int8, _ = sample.load_decoder(paths["decoder_int8_onnx"], threads=1)
    z = sample.prior_latents(32, 6, seed=0)
    assert np.mean(np.abs(sample.decode(int8, z) - sample.decode(fp32, z))) <= 0.01
    sample.main([paths["decoder_int8_onnx"], "--threads", "1", "--out", str(tmp_path / "q.png")])
    assert Image.open(tmp_path / "q.png").size == _cells(8, 8)


def test_prior_draws_pick_a_component_then_its_gaussian():
    means = np.array([[-10.0, 0.0], [10.0, 5.0]], np.float32)
    log_vars = np.log(np.array([[1e-4, 1e-4], [1e-4, 1e-4]], np.float32))
    z = sample.prior_latents(400, 2, seed=1, prior=(means, log_vars))
    nearest = np.argmin(np.abs(z[:, :1] - means[:, 0]), axis=1)
    np.testing.assert_allclose(z, means[nearest], atol=0.05)
    assert 150 < np.sum(nearest == 1) < 250  # components chosen uniformly


def test_a_vamp_export_is_sampled_from_its_prior_file(vamp_export, tmp_path):
    paths = vamp_export["paths"]
    message = sample.main([paths["decoder_onnx"], "--n", "16", "--seed", "4",
                           "--out", str(tmp_path / "auto.png")])
    assert f"z from the VampPrior in {paths['prior']}" in message
    z = sample.prior_latents(16, 6, 4, sample.read_prior(paths["prior"], 6))
    np.save(tmp_path / "z.npy", z)
    sample.main([paths["decoder_onnx"], "--latent-file", str(tmp_path / "z.npy"),
                 "--out", str(tmp_path / "given.png")])
    np.testing.assert_array_equal(_pixels(tmp_path / "auto.png"),
                                  _pixels(tmp_path / "given.png"))
    standard = sample.prior_latents(16, 6, 4)
    assert not np.allclose(z, standard)  # the prior file was used, not N(0, I)


def _write(path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


BAD_INPUTS = [
    ("missing model", lambda p, t: [str(t / "nope.onnx")], "no such file"),
    ("a SavedModel directory", lambda p, t: [p["decoder_saved_model"]],
     "is a directory (a SavedModel?); this sampler runs the ONNX file"),
    ("a checkpoint, not ONNX", lambda p, t: [_write(t / "best.keras", b"PK\x03\x04")],
     "is not a model onnxruntime can load"),
    ("unknown picture format", lambda p, t: [p["decoder_onnx"], "--out", str(t / "grid.xyz")],
     "cannot tell the picture format from '.xyz'"),
    ("not ONNX", lambda p, t: [_write(t / "x.onnx", b"not a model")],
     "is not a model onnxruntime can load"),
    ("encoder instead of decoder", lambda p, t: [p["encoder_onnx"]], "it is not a decoder"),
    ("zero images", lambda p, t: [p["decoder_onnx"], "--n", "0"], "must be between 1 and"),
    ("too many images", lambda p, t: [p["decoder_onnx"], "--n", str(MAX_IMAGES + 1)],
     "must be between 1 and 10000"),
    ("zero threads", lambda p, t: [p["decoder_onnx"], "--threads", "0"], "must be at least 1"),
    ("latents of the wrong shape", lambda p, t: [
        p["decoder_onnx"], "--latent-file", _npy(t, np.zeros((4, 5), np.float32))],
     "has shape [4, 5]; this decoder needs [N, 6]"),
    ("latents of the wrong dtype", lambda p, t: [
        p["decoder_onnx"], "--latent-file", _npy(t, np.zeros((4, 6), np.int64))],
     "holds int64 values"),
    ("latents not finite", lambda p, t: [
        p["decoder_onnx"], "--latent-file", _npy(t, np.full((2, 6), np.nan, np.float32))],
     "NaN or infinite"),
    ("latent file not .npy", lambda p, t: [
        p["decoder_onnx"], "--latent-file", _write(t / "z.txt", b"1 2 3")], "is not a .npy"),
    ("output directory missing", lambda p, t: [p["decoder_onnx"], "--out",
                                               str(t / "no" / "grid.png")], "does not exist"),
    ("output is a directory", lambda p, t: [p["decoder_onnx"], "--out", str(t)],
     "is a directory"),
    ("prior file unreadable", lambda p, t: [
        p["vamp_decoder_onnx"], "--prior", _write(t / "prior.npz", b"not npz")],
     "cannot read the prior from"),
    ("prior file empty", lambda p, t: [p["vamp_decoder_onnx"], "--prior", _write(t / "e.npz", b"")],
     "cannot read the prior from"),
    ("prior file a single array", lambda p, t: [
        p["vamp_decoder_onnx"], "--prior", _npy(t, np.zeros((3, 6), np.float32))],
     "not an .npz archive"),
    ("prior file without means", lambda p, t: [
        p["vamp_decoder_onnx"], "--prior", _write(t / "p.npz", _npz_bytes(scales=np.ones(3)))],
     "cannot read the prior from"),
    ("prior of another latent size", lambda p, t: [
        p["vamp_decoder_onnx"], "--prior", _prior(t, np.zeros((3, 5), np.float32))],
     "holds a prior of shape [3, 5], not finite [K, 6]"),
    ("prior file for an N(0, I) decoder", lambda p, t: [
        p["decoder_onnx"], "--prior", _prior(t, np.zeros((3, 6), np.float32))],
     "was trained with the N(0, I) prior (its metadata says prior: normal)"),
    ("both latents and interpolation", lambda p, t: [
        p["decoder_onnx"], "--interpolate", "--latent-file", _npy(t, np.zeros((1, 6)))],
     "exclude each other"),
]


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _prior(tmp_path, means) -> str:
    path = str(tmp_path / "other_prior.npz")
    np.savez(path, means=means, log_vars=np.zeros_like(means))
    return path


def _npy(tmp_path, array) -> str:
    path = str(tmp_path / f"z{array.dtype}{array.shape[0]}.npy")
    np.save(path, array)
    return path


@pytest.mark.parametrize("case, make_args, message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_clear_error_and_keeps_existing_output(small_export, vamp_export,
                                                              tmp_path, case, make_args,
                                                              message):
    existing = tmp_path / "samples.png"  # the default --out, from an earlier good run
    existing.write_bytes(b"earlier image")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(SampleError) as error:
            sample.main(make_args({**small_export["paths"],
                                   "vamp_decoder_onnx": vamp_export["paths"]["decoder_onnx"]},
                                  tmp_path))
    finally:
        os.chdir(cwd)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert existing.read_bytes() == b"earlier image"


@pytest.fixture(scope="module")
def edge_python(tmp_path_factory) -> str:
    """A Python with only requirements-edge.txt installed: $EDGE_PYTHON (CI makes one), or
    a fresh virtual environment made here with pip."""
    if os.environ.get("EDGE_PYTHON"):
        return os.environ["EDGE_PYTHON"]
    env_dir = tmp_path_factory.mktemp("edge-venv")
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", REQUIREMENTS_EDGE],
                   check=True, timeout=600)
    return python


def test_runs_alone_where_tensorflow_is_not_installed(edge_python, small_export, tmp_path):
    no_tf = subprocess.run([edge_python, "-c", "import tensorflow"], capture_output=True)
    assert no_tf.returncode != 0 and b"No module named 'tensorflow'" in no_tf.stderr
    shutil.copy(sample.__file__, tmp_path / "sample.py")  # copied alone, as onto a device
    result = subprocess.run(
        [edge_python, "sample.py", small_export["paths"]["decoder_int8_onnx"], "--n", "16",
         "--seed", "0", "--out", "grid.png"], cwd=tmp_path, capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 0, result.stderr
    assert "16 images" in result.stdout and "latent_dim 6" in result.stdout
    assert Image.open(tmp_path / "grid.png").size == _cells(4, 4)


def test_command_line_errors_exit_2_with_one_line(edge_python, tmp_path):
    result = subprocess.run([edge_python, sample.__file__, str(tmp_path / "none.onnx")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("sample.py: error: ")


@pytest.mark.parametrize("name, format_", [("grid.jpg", "JPEG"), ("grid.webp", "WEBP"),
                                           ("grid.png", "PNG")])
def test_the_picture_format_follows_the_file_name(small_export, tmp_path, name, format_):
    sample.main([small_export["paths"]["decoder_onnx"], "--n", "4", "--out",
                 str(tmp_path / name)])
    assert Image.open(tmp_path / name).format == format_


def test_a_prior_file_beside_an_n01_decoder_is_not_used(small_export, vamp_export, tmp_path):
    """A stale prior.npz from another model beside an N(0, I) decoder changes nothing: z
    comes from N(0, I), as the decoder's metadata says."""
    shutil.copy(small_export["paths"]["decoder_onnx"], tmp_path / "decoder.onnx")
    shutil.copy(vamp_export["paths"]["prior"], tmp_path / "prior.npz")
    message = sample.main([str(tmp_path / "decoder.onnx"), "--n", "4", "--seed", "2",
                           "--out", str(tmp_path / "with.png")])
    assert "VampPrior" not in message
    (tmp_path / "prior.npz").unlink()
    sample.main([str(tmp_path / "decoder.onnx"), "--n", "4", "--seed", "2", "--out",
                 str(tmp_path / "without.png")])
    assert (tmp_path / "with.png").read_bytes() == (tmp_path / "without.png").read_bytes()


def test_a_vamp_decoder_without_its_prior_file_is_refused(vamp_export, tmp_path):
    alone = tmp_path / "decoder.onnx"
    shutil.copy(vamp_export["paths"]["decoder_onnx"], alone)  # copied without prior.npz
    with pytest.raises(SampleError, match="trained with a VampPrior, but no prior.npz") as e:
        sample.main([str(alone), "--out", str(tmp_path / "x.png")])
    assert "\n" not in str(e.value) and not (tmp_path / "x.png").exists()
    message = sample.main([str(alone), "--prior", vamp_export["paths"]["prior"], "--out",
                           str(tmp_path / "x.png")])
    assert "z from the VampPrior" in message


def test_the_seeded_generator_draws_standard_normals_and_uniform_components():
    """The generator the browser page shares: normals with mean 0 and variance 1 and no
    correlation between neighbours, uniforms in (0, 1), different streams and seeds
    different numbers, the same seed the same numbers."""
    normals = sample.seeded_normal(7, 200_000)
    assert abs(normals.mean()) < 0.01 and abs(normals.std() - 1) < 0.01
    assert abs(np.corrcoef(normals[:-1], normals[1:])[0, 1]) < 0.01
    uniforms = sample.seeded_uniform(7, 2, 100_000)
    assert 0 < uniforms.min() and uniforms.max() < 1 and abs(uniforms.mean() - 0.5) < 0.005
    np.testing.assert_array_equal(sample.seeded_normal(7, 10), normals[:10])
    assert not np.allclose(sample.seeded_normal(8, 10), normals[:10])
    assert not np.allclose(sample.seeded_uniform(7, 0, 10), sample.seeded_uniform(7, 1, 10))


def test_temperature_scales_the_prior_spread_about_the_same_components():
    means = np.array([[5.0, -5.0], [-5.0, 5.0]], np.float32)
    log_vars = np.zeros((2, 2), np.float32)
    cold = sample.prior_latents(4000, 2, 3, (means, log_vars), temperature=0.5)
    warm = sample.prior_latents(4000, 2, 3, (means, log_vars))
    centre = np.where(cold[:, :1] > 0, means[0], means[1])
    assert np.std(cold - centre) == pytest.approx(0.5, rel=0.05)
    assert np.std(warm - centre) == pytest.approx(1.0, rel=0.05)
    np.testing.assert_array_equal(np.sign(cold), np.sign(warm))  # the same components


def test_a_label_is_a_name_in_any_letter_case_or_an_index_and_a_near_miss_is_named():
    names = ["T-shirt/top", "Sneaker", "Bag"]
    assert [sample.resolve_label(text, names) for text in ("Sneaker", "sneaker", "BAG", "0")
            ] == [1, 1, 2, 0]
    assert sample.resolve_label("a", ["A", "a"]) == 1  # exact first
    with pytest.raises(SampleError, match=r"^--label 'Sneakers' is not a class of this model "
                                          r"\(did you mean 'Sneaker'\?\); known: 0 T-shirt/top, "
                                          r"1 Sneaker, 2 Bag$"):
        sample.resolve_label("Sneakers", names)
    with pytest.raises(SampleError, match=r"^--label 'hat' is not a class of this model; known"):
        sample.resolve_label("hat", names)
    with pytest.raises(SampleError, match="is not a class"):
        sample.resolve_label("b", ["A", "a"])  # neither exact nor one name in any case
