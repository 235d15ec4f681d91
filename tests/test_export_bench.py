"""Specification of `python -m export.bench`: one row per runtime, real measured numbers.
(Speed itself is reported by the benchmark, never asserted by a test.)"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from export.bench import benchmark, format_table, main
from keras_vae.run.cli import run_command


def test_every_runtime_gets_a_row_of_measurements(trained_run):
    result = benchmark(trained_run, threads=1, seconds=0.05)
    assert [row["runtime"].split(" (")[0] for row in result["rows"]] == [
        "Keras model", "SavedModel", "ONNX fp32", "ONNX int8", "LiteRT"]
    for row in result["rows"]:  # like for like: each computes every decoder output
        assert row["outputs"] == result["outputs"] == ["image", "logits"], row["runtime"]
        assert 0 < row["batch1_p50_us"] <= row["batch1_p99_us"]
        assert row["batch256_examples_per_s"] > 0
    table = format_table(result)
    assert "intra-op threads: 1" in table and table.count("\n| ") == 6
    assert "every row computes every output (image, logits)" in table


def test_an_unfinished_run_s_export_is_timed_from_its_manifest(run_copy):
    """A run stopped before its summary was written, then exported with `python -m
    export`: the export's manifest says where its decoders are."""
    os.remove(os.path.join(run_copy, "summary.json"))
    result = benchmark(run_copy, threads=1, seconds=0.02)
    assert [row["runtime"].split(" (")[0] for row in result["rows"]] == [
        "Keras model", "SavedModel", "ONNX fp32", "ONNX int8", "LiteRT"]
    assert all(row["batch256_examples_per_s"] > 0 for row in result["rows"])


def test_command_writes_bench_json(run_copy, capsys):
    trained_run = run_copy
    assert run_command(main, "export.bench", [trained_run, "--seconds", "0.02"]) == 0
    with open(os.path.join(trained_run, "export", "bench.json")) as f:
        assert len(json.load(f)["rows"]) == 5
    assert "| ONNX int8 (onnxruntime) |" in capsys.readouterr().out


def test_a_run_without_export_is_refused(run_copy, tmp_path, capsys):
    summary_path = os.path.join(run_copy, "summary.json")
    with open(summary_path) as f:
        summary = json.load(f)
    summary["artifacts"] = {"checkpoint": "best.keras"}  # trained with --no-export
    with open(summary_path, "w") as f:
        json.dump(summary, f)
    shutil.rmtree(os.path.join(run_copy, "export"))
    assert run_command(main, "export.bench", [run_copy]) == 2
    err = capsys.readouterr().err
    assert "has no exported decoder (neither summary.json nor export/manifest.json lists " in err
    assert "run `python -m export" in err
    assert run_command(main, "export.bench", [str(tmp_path)]) == 2
    assert "has no best.keras" in capsys.readouterr().err


HIERARCHIES = [
    ("vamp", dict(likelihood="bernoulli", prior="vamp", pseudo_inputs=5), ["image", "logits"]),
    ("conditional mixture", dict(likelihood="logistic", conditional=True, class_components=3,
                                 mixture_components=2, label_names=tuple("0123456789")),
     ["image", "locations", "log_scales", "mixture_logits"]),
]


@pytest.mark.slow  # the whole export, verified, twice
@pytest.mark.parametrize("case, settings, outputs", HIERARCHIES,
                         ids=[h[0] for h in HIERARCHIES])
def test_a_hierarchy_is_timed_with_every_input_its_decoder_takes(tmp_path, case, settings,
                                                                 outputs):
    """A hierarchy's decoder takes noise, temperature and, with a VampPrior on top or a
    mixture per class, component draws (and a conditional one labels); every runtime,
    Keras's generator included, is timed on them. The run is a fresh model's checkpoint,
    exported by the command: what is timed needs no training."""
    import keras

    from export.__main__ import main as export
    from keras_vae.config import ModelConfig, TrainConfig
    from keras_vae.model.vae import VAE
    from keras_vae.run.callbacks import save_checkpoint
    from keras_vae.run.layout import CHECKPOINT, write_run_config

    run_dir = str(tmp_path / "run")
    config = TrainConfig(model=ModelConfig(latent_dim=(4, 2), hidden_dims=(256,), **settings),
                         dataset="binarized_mnist", out=run_dir, pixel_kind="binary",
                         max_examples=200)  # what the export calibrates the scorer on
    os.makedirs(run_dir)
    keras.utils.set_random_seed(0)
    vae = VAE(config.model)
    vae.compile(optimizer=keras.optimizers.Adam())
    save_checkpoint(vae, os.path.join(run_dir, CHECKPOINT))
    write_run_config(config)
    assert run_command(export, "export", [run_dir]) == 0
    result = benchmark(run_dir, threads=1, seconds=0.02)
    assert len(result["rows"]) == 5 and result["latent_dim"] == 6
    assert all(row["outputs"] == outputs for row in result["rows"])
