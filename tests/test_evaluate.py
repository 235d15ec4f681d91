"""Specification of `python -m keras_vae.evaluate RUN_DIR`: what it measures, which
checkpoint it says it measured, and what it refuses."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_vae.measure.nll
from keras_vae.evaluate import main
from keras_vae.measure.evaluation import evaluate
from keras_vae.run.cli import run_command
from keras_vae.run.layout import CHECKPOINT, EVALUATION_PARTIAL


def test_evaluate_function_agrees_with_its_parts(run_copy):
    result = evaluate(run_copy, k=50, max_examples=100)
    assert result["examples"] == 100
    assert sum(result["kl_per_unit"]) == pytest.approx(result["test_kl"], rel=0.05)


def test_a_directory_without_a_run_is_a_usage_error(tmp_path, capsys):
    assert run_command(main, "keras_vae.evaluate", [str(tmp_path)]) == 2
    assert "has no best.keras" in capsys.readouterr().err


def test_evaluation_json_names_the_checkpoint_it_measured(run_copy):
    result = evaluate(run_copy, k=5, max_examples=20)
    with open(os.path.join(run_copy, CHECKPOINT), "rb") as f:
        assert result["checkpoint"]["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert result["checkpoint"] == {**result["checkpoint"], "file": CHECKPOINT, "epoch": 1}


def test_a_run_still_training_is_refused_and_left_as_it_was(run_copy, capsys):
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(os.path.join(run_copy, ".lock"), "w") as f:
            f.write(str(trainer.pid))
        assert run_command(main, "keras_vae.evaluate", [run_copy, "--k", "5"]) == 2
    finally:
        trainer.kill()
    err = capsys.readouterr().err
    assert f"is being trained by process {trainer.pid}" in err and err.count("\n") == 1
    assert not os.path.exists(os.path.join(run_copy, "evaluation.json"))


def test_progress_shows_images_done_running_nll_and_time_left(capsys):
    from keras_vae.measure.evaluation import progress_printer

    show = progress_printer(total=200)
    for done in (100, 200):
        show(np.full(done, 90.0 + done / 100))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("NLL 100/200 images: 91.00 nats so far")
    assert "s left" in lines[0] and lines[-1].startswith("NLL 200/200 images: 92.00")


def test_long_work_says_how_far_it_is_once_a_tenth_in_a_log(capsys):
    from keras_vae.run.progress import progress_lines

    show = progress_lines(total=25)
    for done in range(1, 26):
        show(done, f"calibrated on {done}/25")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10 and lines[-1].startswith("calibrated on 25/25, ")
    assert all(" s elapsed, about " in line and line.endswith(" s left") for line in lines)
    assert lines[-1].endswith("about 0 s left")


def test_the_command_writes_evaluation_json_and_no_tensorflow_log_lines(run_copy):
    done = subprocess.run([sys.executable, "-m", "keras_vae.evaluate", run_copy, "--k", "200",
                           "--max-examples", "300"], capture_output=True, text=True,
                          timeout=300, env={k: v for k, v in os.environ.items()
                                            if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "NLL −log p(x), k = 200" in done.stdout
    with open(os.path.join(run_copy, "evaluation.json")) as f:
        result = json.load(f)
    assert result["k"] == 200 and result["examples"] == 300
    assert 0 < result["test_nll"] < result["test_neg_elbo"]
    assert result["test_nll_bits_per_dim"] == pytest.approx(
        result["test_nll"] / (784 * math.log(2)))
    assert result["image_shape"] == [28, 28, 1] and result["likelihood"] == "bernoulli"
    assert 0 <= result["active_units"] <= 4 and len(result["kl_per_unit"]) == 4
    assert result["seconds"] > 0 and result["peak_rss_mb"] > 0
    assert 0.12 < result["test_mean_pixel"] < 0.15  # about 13 % of the pixels are on
    assert (f"mean pixel of 1,000 samples {result['sample_mean_pixel']:.3f}, of the test "
            f"images {result['test_mean_pixel']:.3f}") in done.stdout


def test_the_samples_mean_pixel_is_that_of_the_decoded_prior_draws():
    """A decoder whose pixel layer ignores z and says P(on) = 0.2 everywhere draws
    samples whose mean pixel is 0.2; the test images' mean is that of the images given."""
    import keras

    from keras_vae.config import ModelConfig
    from keras_vae.measure.evaluation import mean_pixels
    from keras_vae.model.vae import VAE

    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=3, hidden_dims=(16,)))
    pixels = vae.decoder.get_layer("pixel_parameters")
    pixels.kernel.assign(np.zeros(pixels.kernel.shape))
    pixels.bias.assign(np.full(pixels.bias.shape, np.log(0.2 / 0.8)))
    keras.utils.set_random_seed(0)
    found = mean_pixels(vae, np.full((5, 28, 28, 1), 0.5, np.float32), seed=0, samples=50)
    assert found == {"sample_mean_pixel": pytest.approx(0.2, abs=1e-6), "test_mean_pixel": 0.5}


def test_an_interrupted_evaluation_continues_where_it_stopped(run_copy, monkeypatch, capsys):
    """Stopped after one batch of 100 images, the same evaluation run again computes only
    the remaining ones, from where the first stopped (that these equal an uninterrupted
    call's is `importance_nll`'s test, in test_likelihood.py)."""
    real = keras_vae.measure.nll.importance_nll
    computed, returned = [], []

    def stopping_after_one_batch(*args, progress, **kwargs):
        def progress_then_stop(nll_so_far):
            progress(nll_so_far)
            if len(nll_so_far) == 100:
                raise KeyboardInterrupt
        return real(*args, progress=progress_then_stop, **kwargs)

    def counting(*args, known=None, **kwargs):
        computed.append(len(args[1]) - (0 if known is None else len(known)))
        returned.append(real(*args, known=known, **kwargs))
        return returned[-1]

    settings = {"k": 5, "max_examples": 300, "class_check": False}
    monkeypatch.setattr(keras_vae.measure.nll, "importance_nll", stopping_after_one_batch)
    with pytest.raises(KeyboardInterrupt):
        evaluate(run_copy, **settings)
    partial = os.path.join(run_copy, EVALUATION_PARTIAL)
    with np.load(partial) as saved:
        assert len(saved["nll"]) == 100 and saved["k"].item() == 5
    monkeypatch.setattr(keras_vae.measure.nll, "importance_nll", counting)
    with np.load(partial) as saved:
        first_batch = saved["nll"]
    resumed = evaluate(run_copy, **settings)
    assert "resuming the NLL after 100 images" in capsys.readouterr().out
    assert computed == [200] and not os.path.exists(partial)
    np.testing.assert_array_equal(returned[0][:100], first_batch)  # kept, not recomputed
    assert resumed["examples"] == 300
    assert resumed["test_nll"] == pytest.approx(returned[0].mean(), rel=1e-9)


def test_saved_nlls_of_another_evaluation_are_kept_and_a_damaged_file_replaced(tmp_path):
    """Hours of saved NLLs are never overwritten by an evaluation with other flags: it is
    refused, naming the flags that finish them. An older checkpoint's are replaced."""
    from keras_vae.measure.evaluation import PartialNll
    from keras_vae.run.cli import UsageError

    path = tmp_path / EVALUATION_PARTIAL
    key = {"k": 20, "seed": 0, "examples": 300, "sha256": "a"}
    np.savez(path, nll=np.arange(100.0), **key)
    assert len(PartialNll(str(path), key).known) == 100
    for other in ({"k": 5000}, {"seed": 1}, {"examples": 100}):
        with pytest.raises(UsageError, match=r"holds 100 NLLs of another evaluation of this "
                                             r"checkpoint \(--k 20 --seed 0 --max-examples "
                                             r"300\); run that to finish it, or delete"):
            PartialNll(str(path), {**key, **other})
    with np.load(path) as saved:
        assert len(saved["nll"]) == 100
    assert len(PartialNll(str(path), {**key, "sha256": "b"}).known) == 0
    path.write_bytes(b"not an npz file")
    assert len(PartialNll(str(path), key).known) == 0


def test_the_training_split_is_measured_into_its_own_file_beside_the_test_split(
        run_copy, capsys):
    """`--split train` measures the first training images (the figure is the estimator's
    on exactly those images), writes evaluation_train.json under train_ names, leaves
    the test evaluation as it was, and prints the gap between the two."""
    from keras_vae.data.pipeline import datasets_for, first_examples, images_of, splits_for
    from keras_vae.run.layout import load_run

    test = evaluate(run_copy, k=20, max_examples=60, class_check=False)
    with open(os.path.join(run_copy, "evaluation.json")) as f:
        written_test = f.read()
    assert run_command(main, "keras_vae.evaluate", [run_copy, "--split", "train", "--k", "20",
                                                    "--max-examples", "60"]) == 0
    with open(os.path.join(run_copy, "evaluation_train.json")) as f:
        train = json.load(f)
    with open(os.path.join(run_copy, "evaluation.json")) as f:
        assert f.read() == written_test
    assert train["split"] == "train" and train["examples"] == 60
    assert {"train_nll", "train_neg_elbo", "train_kl"} <= set(train)
    assert not any(key.startswith("test_") or "sample" in key for key in train)
    vae, config = load_run(run_copy)
    splits = splits_for(config)
    _, _, data = datasets_for(config, {**splits, "test": first_examples(splits["train"], 60)})
    direct = keras_vae.measure.nll.importance_nll(vae, images_of(data), 20, 0)
    assert train["train_nll"] == pytest.approx(float(direct.mean()), rel=1e-6)
    assert train["train_nll"] != pytest.approx(test["test_nll"], rel=1e-3)
    out = capsys.readouterr().out
    assert "binarized_mnist train, 60 examples" in out and "mean pixel" not in out
    assert f"test − train: {test['test_nll'] - train['train_nll']:+.2f} ± " in out


def test_the_gap_needs_the_same_checkpoint_k_and_seed():
    from keras_vae.evaluate import generalization_gap

    def result(split, nll, error, k=20, sha="a"):
        return {"split": split, "k": k, "seed": 0, "examples": 100, "losses_bound": "log p(x)",
                "checkpoint": {"sha256": sha}, f"{split}_nll": nll,
                f"{split}_nll_standard_error": error}

    train = result("train", 80.0, 0.3)
    assert generalization_gap(train, result("test", 84.5, 0.4)) == (
        "  test − train: +4.50 ± 0.50 nats (test 84.50 on its first 100 images, "
        "train 80.00 on its first 100)")
    for other in (None, result("test", 84.5, 0.4, k=5000), result("test", 84.5, 0.4, sha="b")):
        assert generalization_gap(train, other).startswith(
            "  no test evaluation of this checkpoint at k = 20, seed 0 to compare with")


@pytest.mark.slow
def test_a_folder_of_six_photos_trains_a_conditional_hierarchy_and_evaluates(tmp_path,
                                                                             capsys):
    """The smallest folder a run takes (5 images, here 3 per class): 4 train in one batch
    of the default size, the test split holds one image of one class. Every picture and
    export is made; what one image cannot give (a standard error, a Fréchet distance, the
    absent class's accuracy) is said so, not a crash or a NaN."""
    from PIL import Image

    from keras_vae.train import main as train_main

    rng = np.random.default_rng(0)
    for name, level in (("dark", 60), ("light", 190)):
        os.makedirs(tmp_path / "photos" / name)
        for i in range(3):
            pixels = np.clip(rng.normal(level, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / name / f"{i}.png")
    run_dir = str(tmp_path / "run")
    assert run_command(train_main, "keras_vae.train", [
        "--dataset", f"folder:{tmp_path / 'photos'}", "--conditional", "--epochs", "2",
        "--hidden-dims", "32", "--latent-dim", "4,2", "--no-jit", "--verbose", "0", "--out",
        run_dir]) == 0
    assert {"levels.png", "temperatures.png", "export"} <= set(os.listdir(run_dir))
    assert run_command(main, "keras_vae.evaluate", [run_dir, "--k", "20"]) == 0
    out = capsys.readouterr().out
    assert "(one image: no standard error)" in out
    assert "Fréchet distance: none, it needs at least 2 test images" in out
    with open(os.path.join(run_dir, "evaluation.json")) as f:
        result = json.load(f)
    assert result["examples"] == 1 and result["test_nll_given_label_standard_error"] is None
    assert math.isfinite(result["test_nll_given_label"])
    assert result["sample_frechet_distance"] is None
    assert len(result["test_class_accuracy"]) == 1  # the one class the test split has
    assert set(result["sample_class_accuracy"]) == {"dark", "light"}
