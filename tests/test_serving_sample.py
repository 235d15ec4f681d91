"""Specification of serving/sample.py, the edge sampler (numpy + onnxruntime + Pillow)."""

from __future__ import annotations

import os
import subprocess
import venv

import numpy as np
import pytest
from PIL import Image

from serving import sample, vae_decoder, vae_draws
from serving.sample import MAX_IMAGES
from serving.vae_cli import SampleError
from serving.vae_pictures import UPSCALE
from tests.conftest import copy_edge_files

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
    _, latent_dim = vae_decoder.load_decoder(small_export["paths"]["decoder_onnx"])
    assert latent_dim == 6


def test_latent_file_is_decoded_as_given(small_export, tmp_path):
    """latent_decoder.onnx decodes the z of a file; an N(0, I) decoder's noise at
    temperature 1 is its z, so the two pictures are the same."""
    z = vae_draws.seeded_noise(5, 6, seed=9)
    np.save(tmp_path / "z.npy", z)
    message = sample.main([small_export["paths"]["latent_decoder_onnx"], "--latent-file",
                           str(tmp_path / "z.npy"), "--out", str(tmp_path / "from_file.png")])
    assert f"z from {tmp_path / 'z.npy'}" in message
    sample.main([small_export["paths"]["decoder_onnx"], "--n", "5", "--seed", "9", "--out",
                 str(tmp_path / "drawn.png")])
    np.testing.assert_array_equal(_pixels(tmp_path / "from_file.png"),
                                  _pixels(tmp_path / "drawn.png"))


def test_interpolation_is_one_row_between_two_seeded_noises(small_export, tmp_path):
    noise = vae_draws.interpolation_noise(7, 6, seed=3)
    start, end = vae_draws.seeded_noise(2, 6, seed=3)
    np.testing.assert_allclose(noise[0], start)
    np.testing.assert_allclose(noise[-1], end)
    np.testing.assert_allclose(noise[3], (start + end) / 2, atol=1e-6)
    sample.main([small_export["paths"]["decoder_onnx"], "--interpolate", "--n", "7",
                 "--seed", "3", "--out", str(tmp_path / "row.png")])
    assert Image.open(tmp_path / "row.png").size == _cells(1, 7)


def test_the_temperature_scales_the_noise_inside_the_decoder(small_export):
    decoder, _ = vae_decoder.load_decoder(small_export["paths"]["decoder_onnx"])
    latent, _ = vae_decoder.load_decoder(small_export["paths"]["latent_decoder_onnx"], given_z=True)
    noise = vae_draws.seeded_noise(8, 6, seed=5)
    np.testing.assert_allclose(vae_decoder.decode(decoder, noise, temperature=0.4),
                               vae_decoder.decode(latent, 0.4 * noise), atol=1e-5)


def test_int8_model_with_one_thread_draws_nearly_the_same_images(small_export, tmp_path):
    paths = small_export["paths"]
    fp32, _ = vae_decoder.load_decoder(paths["decoder_onnx"])
    int8, _ = vae_decoder.load_decoder(paths["decoder_int8_onnx"], threads=1)
    z = vae_draws.seeded_noise(32, 6, seed=0)
    assert np.mean(np.abs(vae_decoder.decode(int8, z) - vae_decoder.decode(fp32, z))) <= 0.01
    sample.main([paths["decoder_int8_onnx"], "--threads", "1", "--out", str(tmp_path / "q.png")])
    assert Image.open(tmp_path / "q.png").size == _cells(8, 8)


def test_a_vamp_export_draws_its_components_from_the_seed(vamp_export, tmp_path):
    """decoder.onnx of a VampPrior model picks component ⌊u·K⌋ for the seed's uniforms u
    (stream 2): the picture equals latent_decoder.onnx given z = μ_k + σ_k·ε."""
    import keras

    paths, vae = vamp_export["paths"], vamp_export["vae"]
    message = sample.main([paths["decoder_onnx"], "--n", "16", "--seed", "4",
                           "--out", str(tmp_path / "drawn.png")])
    assert "z from its VampPrior" in message
    means, log_vars = (keras.ops.convert_to_numpy(t) for t in vae.prior_components())
    k = np.floor(vae_draws.seeded_uniform(4, 2, 16) * len(means)).astype(int)
    z = means[k] + np.exp(0.5 * log_vars[k]) * vae_draws.seeded_noise(16, 6, 4)
    np.save(tmp_path / "z.npy", z.astype(np.float32))
    sample.main([paths["latent_decoder_onnx"], "--latent-file", str(tmp_path / "z.npy"),
                 "--out", str(tmp_path / "given.png")])
    drawn, given = _pixels(tmp_path / "drawn.png"), _pixels(tmp_path / "given.png")
    assert np.abs(drawn.astype(int) - given.astype(int)).max() <= 1  # rounding to 8 bits


def _old_decoder(paths, tmp_path) -> str:
    """A decoder as exports before the sampling contract wrote it: input `z`, no role."""
    import onnx

    model = onnx.load(paths["latent_decoder_onnx"])
    kept = [p for p in model.metadata_props if p.key != "role"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    path = str(tmp_path / "decoder.onnx")
    onnx.save(model, path)
    return path


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
    ("encoder instead of decoder", lambda p, t: [p["encoder_onnx"]],
     "it is an encoder, not a decoder"),
    ("zero images", lambda p, t: [p["decoder_onnx"], "--n", "0"], "must be between 1 and"),
    ("too many images", lambda p, t: [p["decoder_onnx"], "--n", str(MAX_IMAGES + 1)],
     "must be between 1 and 10000"),
    ("zero threads", lambda p, t: [p["decoder_onnx"], "--threads", "0"], "must be at least 1"),
    ("latents of the wrong shape", lambda p, t: [
        p["latent_decoder_onnx"], "--latent-file", _npy(t, np.zeros((4, 5), np.float32))],
     "has shape [4, 5]; this decoder needs [N, 6]"),
    ("latents of the wrong dtype", lambda p, t: [
        p["latent_decoder_onnx"], "--latent-file", _npy(t, np.zeros((4, 6), np.int64))],
     "holds int64 values"),
    ("latents not finite", lambda p, t: [
        p["latent_decoder_onnx"], "--latent-file", _npy(t, np.full((2, 6), np.nan, np.float32))],
     "contains NaN"),
    ("latent file not .npy", lambda p, t: [
        p["latent_decoder_onnx"], "--latent-file", _write(t / "z.txt", b"1 2 3")],
     "is not a .npy"),
    ("latents for the sampling decoder", lambda p, t: [
        p["decoder_onnx"], "--latent-file", _npy(t, np.zeros((2, 6), np.float32))],
     "--latent-file decodes given latents with latent_decoder.onnx"),
    ("the latent decoder without latents", lambda p, t: [p["latent_decoder_onnx"]],
     "decodes given latents: pass them with --latent-file"),
    ("a decoder exported before the contract", lambda p, t: [_old_decoder(p, t)],
     "was exported by an older keras-vae (it takes z, and a VampPrior's prior.npz); "
     "export it again with `python -m export RUN`"),
    ("both latents and interpolation", lambda p, t: [
        p["decoder_onnx"], "--interpolate", "--latent-file", _npy(t, np.zeros((1, 6)))],
     "exclude each other"),
]


def _npy(tmp_path, array) -> str:
    path = str(tmp_path / f"z{array.dtype}{array.shape[0]}.npy")
    np.save(path, array)
    return path


@pytest.mark.parametrize("case, make_args, message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_clear_error_and_keeps_existing_output(small_export, tmp_path, case,
                                                              make_args, message):
    existing = tmp_path / "samples.png"  # the default --out, from an earlier good run
    existing.write_bytes(b"earlier image")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(SampleError) as error:
            sample.main(make_args(small_export["paths"], tmp_path))
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
    copy_edge_files(tmp_path)  # copied alone, as onto a device
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


def test_the_seeded_generator_draws_standard_normals_and_uniform_components():
    """The generator the browser page shares: normals with mean 0 and variance 1 and no
    correlation between neighbours, uniforms in (0, 1), different streams and seeds
    different numbers, the same seed the same numbers."""
    normals = vae_draws.seeded_normal(7, 200_000)
    assert abs(normals.mean()) < 0.01 and abs(normals.std() - 1) < 0.01
    assert abs(np.corrcoef(normals[:-1], normals[1:])[0, 1]) < 0.01
    uniforms = vae_draws.seeded_uniform(7, 2, 100_000)
    assert 0 < uniforms.min() and uniforms.max() < 1 and abs(uniforms.mean() - 0.5) < 0.005
    np.testing.assert_array_equal(vae_draws.seeded_normal(7, 10), normals[:10])
    assert not np.allclose(vae_draws.seeded_normal(8, 10), normals[:10])
    assert not np.allclose(vae_draws.seeded_uniform(7, 0, 10), vae_draws.seeded_uniform(7, 1, 10))


def test_a_label_is_a_name_in_any_letter_case_or_an_index_and_a_near_miss_is_named():
    names = ["T-shirt/top", "Sneaker", "Bag"]
    assert [vae_decoder.resolve_label(text, names) for text in ("Sneaker", "sneaker", "BAG", "0")
            ] == [1, 1, 2, 0]
    assert vae_decoder.resolve_label("a", ["A", "a"]) == 1  # exact first
    with pytest.raises(SampleError, match=r"^--label 'Sneakers' is not a class of this model "
                                          r"\(did you mean 'Sneaker'\?\); known: 0 T-shirt/top, "
                                          r"1 Sneaker, 2 Bag$"):
        vae_decoder.resolve_label("Sneakers", names)
    with pytest.raises(SampleError, match=r"^--label 'hat' is not a class of this model; known"):
        vae_decoder.resolve_label("hat", names)
    with pytest.raises(SampleError, match="is not a class"):
        vae_decoder.resolve_label("b", ["A", "a"])  # neither exact nor one name in any case
