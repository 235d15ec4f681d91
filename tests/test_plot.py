"""Specification of keras_vae/measure/pictures.py's run pictures and `python -m keras_vae.plot`."""

from __future__ import annotations

import json
import os
import shutil

import keras
import numpy as np
from keras import ops
from PIL import Image

from keras_vae.config import ModelConfig
from keras_vae.measure.pictures import MANIFOLD_SIDE, UPSCALE, draw_run, manifold_latents
from keras_vae.model.vae import VAE
from keras_vae.plot import main
from keras_vae.run.cli import run_command


def test_manifold_latents_cover_normal_quantiles_row_major_with_z2_falling():
    z = manifold_latents(side=5)
    assert z.shape == (25, 2)
    np.testing.assert_allclose(z[:5, 0], [-1.645, -0.598, 0.0, 0.598, 1.645], atol=1e-3)
    assert np.all(z[:5, 1] == z[0, 1]) and z[0, 1] > 1.6 and z[-1, 1] < -1.6


def test_a_2d_latent_with_labels_gets_a_manifold_and_a_latent_scatter(tmp_path):
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=2, hidden_dims=(16,)))
    rng = np.random.default_rng(0)
    images = (rng.random((300, 28, 28, 1)) < 0.2).astype(np.float32)
    history = [{"epoch": e, "loss": 200.0 - e, "reconstruction": 180.0 - e, "kl": 20.0,
                "val_loss": 201.0 - e, "val_reconstruction": 181.0 - e, "val_kl": 20.0}
               for e in range(4)]
    drawn = draw_run(vae, images, rng.integers(0, 10, 300), history, str(tmp_path), seed=0)
    assert set(drawn) == {"samples_png", "reconstructions_png", "curves_png", "manifold_png",
                          "latent_scatter_png"}
    manifold = np.asarray(Image.open(tmp_path / drawn["manifold_png"]))
    assert manifold.shape == (UPSCALE * 28 * MANIFOLD_SIDE,) * 2
    scatter = np.asarray(Image.open(tmp_path / drawn["latent_scatter_png"]).convert("RGB"))
    assert len(np.unique(scatter.reshape(-1, 3), axis=0)) > 10  # coloured points, axes


def test_without_labels_the_scatter_has_one_colour_and_a_larger_latent_no_maps(tmp_path):
    keras.utils.set_random_seed(0)
    images = np.zeros((40, 28, 28, 1), np.float32)
    two_d = draw_run(VAE(ModelConfig(likelihood="bernoulli",
                                     latent_dim=2, hidden_dims=(8,))), images, None, [],
                     str(tmp_path), seed=0)
    assert {"manifold_png", "latent_scatter_png"} <= set(two_d)
    assert Image.open(tmp_path / two_d["latent_scatter_png"]).size[0] > 300
    four_d = draw_run(VAE(ModelConfig(likelihood="bernoulli",
                                      latent_dim=4, hidden_dims=(8,))), images, None, [],
                      str(tmp_path), seed=0)
    assert set(four_d) == {"samples_png", "reconstructions_png"}


def test_a_vamp_prior_model_also_shows_its_pseudo_inputs(tmp_path):
    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli",
                          latent_dim=4, hidden_dims=(8,), prior="vamp", pseudo_inputs=9))
    drawn = draw_run(vae, np.zeros((40, 28, 28, 1), np.float32), None, [], str(tmp_path),
                     seed=0)
    assert drawn["pseudo_inputs_png"] == "pseudo_inputs.png"
    grid = np.asarray(Image.open(tmp_path / "pseudo_inputs.png"))
    assert grid.shape == (UPSCALE * (3 * 30 - 2),) * 2  # 9 images, 3×3
    # near-black images at initialization (pixel ≈ 0.05) are pale ink on white
    assert 0 < grid.mean() < 55  # near-black pseudo-images (pixels about 0.05) on white


def test_plot_redraws_a_finished_run_and_records_the_pictures(run_copy, capsys):
    trained_run = run_copy
    for name in ("samples.png", "curves.png"):
        path = os.path.join(trained_run, name)
        if os.path.exists(path):
            os.remove(path)
    assert run_command(main, "keras_vae.plot", [trained_run]) == 0
    for name in ("samples.png", "reconstructions.png", "curves.png"):
        assert os.path.getsize(os.path.join(trained_run, name)) > 1000
    with open(os.path.join(trained_run, "summary.json")) as f:
        artifacts = json.load(f)["artifacts"]
    assert artifacts["curves_png"] == "curves.png" and "checkpoint" in artifacts
    assert "curves.png" in capsys.readouterr().out


def test_plot_draws_an_unfinished_run_without_marking_it_finished(trained_run, tmp_path):
    unfinished = tmp_path / "unfinished"  # as an interrupted run: no summary.json yet
    shutil.copytree(trained_run, unfinished, ignore=shutil.ignore_patterns("summary.json",
                                                                           "*.png"))
    assert run_command(main, "keras_vae.plot", [str(unfinished)]) == 0
    assert os.path.getsize(unfinished / "samples.png") > 1000
    assert not os.path.exists(unfinished / "summary.json")


def test_a_hierarchy_also_shows_its_temperatures_and_what_each_level_holds(tmp_path):
    from keras_vae.measure.pictures import LEVEL_DRAWS, LEVEL_IMAGES, TEMPERATURES
    from keras_vae.model.vae import VAE

    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=(4, 3, 2),
                               hidden_dims=(16,)))
    images = (np.random.default_rng(0).random((40, 28, 28, 1)) < 0.2).astype(np.float32)
    drawn = draw_run(vae, images, None, [], str(tmp_path), seed=0)
    assert {"temperatures_png", "levels_png"} <= set(drawn)
    temperatures = Image.open(tmp_path / drawn["temperatures_png"])
    assert temperatures.height == UPSCALE * (len(TEMPERATURES) * 30 - 2)
    levels = np.asarray(Image.open(tmp_path / drawn["levels_png"]))
    rows = LEVEL_IMAGES * 2  # levels 2 and 3 kept, for each image
    assert levels.shape[0] == UPSCALE * (rows * 30 - 2)
    assert levels.shape[1] >= UPSCALE * ((LEVEL_DRAWS + 1) * 30 - 2)


def test_a_conditional_hierarchy_draws_every_picture_from_arrays_of_images_and_labels(
        tmp_path):
    """The training command and `plot` pass numpy test images and labels: the top-down
    path must take them beside its own tensors (a mix Keras refuses in a list input)."""
    from keras_vae.model.vae import VAE

    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=(4, 3), hidden_dims=(16,),
                               conditional=True, label_names=("a", "b", "c")))
    images = (np.random.default_rng(0).random((40, 28, 28, 1)) < 0.2).astype(np.float32)
    labels = np.arange(40) % 3
    drawn = draw_run(vae, images, labels, [], str(tmp_path), seed=0)
    assert {"samples_png", "reconstructions_png", "temperatures_png",
            "levels_png"} <= set(drawn)
    from_arrays = ops.convert_to_numpy(vae.encode(images, labels)[0])
    from_tensors = ops.convert_to_numpy(vae.encode(ops.convert_to_tensor(images),
                                                   ops.convert_to_tensor(labels))[0])
    np.testing.assert_array_equal(from_arrays, from_tensors)
