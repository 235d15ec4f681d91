"""The measurements behind `python -m keras_vae.bench` (see that command for what it
reports); a library module, so tests call the same functions.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from keras_vae.callbacks import EpochSeconds, TrainingEpoch
from keras_vae.config import DEFAULT_IMAGE_SHAPE, ModelConfig, TrainConfig
from keras_vae.data import epoch_variable, load_splits, make_dataset
from keras_vae.machine import describe_machine
from keras_vae.run_layout import read_summary
from keras_vae.training import build_model

PIXELS = int(np.prod(DEFAULT_IMAGE_SHAPE))  # the benchmark trains on binarized_mnist


def training_flops_per_example(model: ModelConfig) -> float:
    """Forward multiply-adds of the MLP × 2 FLOP × 3 (forward + the two backward matmuls)."""
    widths = [PIXELS, *model.hidden_dims]
    encoder = sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    encoder += widths[-1] * 2 * model.latent_dim
    decoder_widths = [model.latent_dim, *reversed(model.hidden_dims), PIXELS]
    decoder = sum(a * b for a, b in zip(decoder_widths, decoder_widths[1:], strict=False))
    return 6.0 * (encoder + decoder)


def matmul_roofline(n: int = 2048, seconds: float = 3.0) -> float:
    """GFLOP/s of an n×n float32 matmul in a tf.function: the practical compute peak."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul()  # trace
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        matmul().numpy()
        calls += 1
    return 2 * n**3 * calls / (time.perf_counter() - start) / 1e9


def pipeline_throughput(split, batch_size: int, epochs: int = 3) -> float:
    """Examples/s of the training tf.data pipeline alone (median epoch)."""
    dataset = make_dataset(split, batch_size, shuffle_seed=0)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _ in dataset:
            pass
        times.append(time.perf_counter() - start)
    return len(split) / float(np.median(times))


def measure_training(config: TrainConfig, splits, epochs: int) -> dict:
    """Trains `config` for `epochs` on the training split; times and losses per epoch."""
    keras.utils.set_random_seed(config.seed)
    epoch = epoch_variable()
    data = make_dataset(splits["train"], config.batch_size, shuffle_seed=config.seed,
                        epoch=epoch)
    vae = build_model(config)
    timer = EpochSeconds()
    history = vae.fit(data, epochs=epochs, callbacks=[TrainingEpoch(epoch), timer],
                      verbose=0, shuffle=False)
    seconds = timer.seconds
    steady = float(np.median(seconds[1:]))
    return {"examples_per_s": len(splits["train"]) / steady,
            "first_epoch_s": seconds[0], "steady_epoch_s": steady,
            "compile_overhead_s": seconds[0] - steady,
            "loss_per_epoch": [float(v) for v in history.history["loss"]]}


class TorchVAE:
    """The same VAE (784-400-20 MLP, Adam 1e-3, summed BCE + analytic KL, batch mean) in
    PyTorch eager mode, trained one epoch at a time."""

    def __init__(self, images: np.ndarray, batch_size: int = 128):
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(os.cpu_count() or 1)
        self.torch, self.batch_size = torch, batch_size
        self.x = torch.from_numpy(images.reshape(len(images), PIXELS))
        self.layers = torch.nn.ModuleDict({
            "enc": torch.nn.Linear(PIXELS, 400), "mu": torch.nn.Linear(400, 20),
            "logvar": torch.nn.Linear(400, 20), "dec": torch.nn.Linear(20, 400),
            "out": torch.nn.Linear(400, PIXELS)})
        self.optimizer = torch.optim.Adam(self.layers.parameters(), lr=1e-3)

    def epoch(self) -> float:
        torch, layers = self.torch, self.layers
        start = time.perf_counter()
        for batch in self.x[torch.randperm(len(self.x))].split(self.batch_size):
            h = torch.relu(layers["enc"](batch))
            mu, logvar = layers["mu"](h), layers["logvar"](h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            logits = layers["out"](torch.relu(layers["dec"](z)))
            reconstruction = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, batch, reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (reconstruction + kl) / len(batch)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - start


def side_by_side_with_torch(splits, rounds: int = 5) -> dict | None:
    """Alternates one Keras epoch (default settings) and one PyTorch eager epoch, `rounds`
    times after one warm-up epoch each, so both see the same machine conditions (this
    machine's speed drifts by tens of percent over minutes). None without PyTorch."""
    try:
        torch_vae = TorchVAE(splits["train"].as_float())
    except ImportError:
        return None
    config = TrainConfig(dataset="binarized_mnist")
    keras.utils.set_random_seed(config.seed)
    data = make_dataset(splits["train"], config.batch_size, shuffle_seed=config.seed)
    vae, timer = build_model(config), EpochSeconds()
    vae.fit(data, epochs=1, callbacks=[timer], verbose=0, shuffle=False)
    torch_vae.epoch()
    torch_seconds = []
    for _ in range(rounds):
        vae.fit(data, epochs=1, callbacks=[timer], verbose=0, shuffle=False)
        torch_seconds.append(torch_vae.epoch())
    n = len(splits["train"])
    keras_rate = n / float(np.median(timer.seconds[1:]))
    torch_rate = n / float(np.median(torch_seconds))
    return {"rounds": rounds, "keras_examples_per_s": keras_rate,
            "torch_examples_per_s": torch_rate, "speedup": keras_rate / torch_rate,
            "torch_version": torch_vae.torch.__version__}


def training_peak_memory_mb(epochs: int = 2) -> tuple[float, float]:
    """Peak RSS (MB) of the real `python -m keras_vae.train` command (default settings),
    as its summary.json records it: (while training, whole command with export)."""
    with tempfile.TemporaryDirectory() as out:
        run_dir = os.path.join(out, "run")
        subprocess.run([sys.executable, "-m", "keras_vae.train", "--dataset",
                        "binarized_mnist", "--epochs", str(epochs), "--verbose", "0",
                        "--out", run_dir], check=True, capture_output=True, timeout=1800)
        summary = read_summary(run_dir)
    return summary["training_peak_rss_mb"], summary["command_peak_rss_mb"]


def run_benchmark(epochs: int = 4) -> dict:
    splits = load_splits("binarized_mnist")
    base = TrainConfig(dataset="binarized_mnist")
    roofline = matmul_roofline()
    result = {"date": time.strftime("%Y-%m-%d"), "machine": describe_machine(),
              "tensorflow": tf.__version__, "keras": keras.__version__, "epochs": epochs,
              "matmul_roofline_gflops": roofline, "rows": []}

    def row(name: str, config: TrainConfig) -> dict:
        measured = measure_training(config, splits, epochs)
        flops = training_flops_per_example(config.model)
        measured.update(name=name, batch_size=config.batch_size,
                        jit_compile=config.jit_compile,
                        steps_per_execution=config.steps_per_execution,
                        hidden_dims=list(config.model.hidden_dims),
                        latent_dim=config.model.latent_dim,
                        mflop_per_example=flops / 1e6,
                        share_of_roofline=measured["examples_per_s"] * flops / (roofline * 1e9))
        result["rows"].append(measured)
        print(_format_row(measured), flush=True)
        return measured

    plain = dataclasses.replace(base, jit_compile=False, steps_per_execution=1)
    print(_HEADER, flush=True)
    fast = row("default (XLA, 32 steps/call), batch 128", base)
    slow = row("plain (no XLA, 1 step/call), batch 128", plain)
    row("no XLA, 32 steps/call, batch 128", dataclasses.replace(base, jit_compile=False))
    row("XLA, 1 step/call, batch 128", dataclasses.replace(base, steps_per_execution=1))
    row("default, batch 512", dataclasses.replace(base, batch_size=512))
    row("plain, batch 512", dataclasses.replace(plain, batch_size=512))
    for hidden in (1024, 2048):
        row(f"default, hidden {hidden}", dataclasses.replace(
            base, model=dataclasses.replace(base.model, hidden_dims=(hidden,))))
    for latent in (2, 64):
        row(f"default, latent {latent}", dataclasses.replace(
            base, model=dataclasses.replace(base.model, latent_dim=latent)))

    result["fast_vs_plain_max_relative_loss_diff"] = float(np.max(
        np.abs(np.array(fast["loss_per_epoch"]) - slow["loss_per_epoch"])
        / np.array(slow["loss_per_epoch"])))
    result["pipeline_examples_per_s"] = pipeline_throughput(splits["train"], 128)
    result["pipeline_vs_default_step"] = result["pipeline_examples_per_s"] / fast[
        "examples_per_s"]
    result["torch_side_by_side"] = side_by_side_with_torch(splits)
    result["training_peak_rss_mb"], result["command_peak_rss_mb"] = training_peak_memory_mb()
    return result


_HEADER = ("| configuration | examples/s | first epoch (s) | steady epoch (s) | MFLOP/ex | "
           "% of roofline |\n|---|---|---|---|---|---|")


def _format_row(row: dict) -> str:
    return (f"| {row['name']} | {row['examples_per_s']:,.0f} | {row['first_epoch_s']:.2f} | "
            f"{row['steady_epoch_s']:.2f} | {row['mflop_per_example']:.2f} | "
            f"{100 * row['share_of_roofline']:.0f} % |")


def summarize(result: dict) -> str:
    torch = result["torch_side_by_side"]
    torch_line = ("PyTorch eager, same network: not installed (pip install torch==2.13.0)"
                  if torch is None else
                  f"side by side, {torch['rounds']} alternating epochs, batch 128: keras-vae "
                  f"{torch['keras_examples_per_s']:,.0f} examples/s, PyTorch "
                  f"{torch['torch_version']} eager {torch['torch_examples_per_s']:,.0f} → "
                  f"{torch['speedup']:.2f}×")
    return "\n".join([
        f"{result['machine']}; TensorFlow {result['tensorflow']}, Keras {result['keras']}; "
        f"{result['date']}",
        f"matmul roofline (2048² float32): {result['matmul_roofline_gflops']:.1f} GFLOP/s",
        f"tf.data pipeline alone: {result['pipeline_examples_per_s']:,.0f} examples/s "
        f"= {result['pipeline_vs_default_step']:.0f}× the default training step",
        torch_line,
        f"fast vs plain path, per-epoch loss over {result['epochs']} epochs: max relative "
        f"difference {result['fast_vs_plain_max_relative_loss_diff']:.2e}",
        f"peak RSS of `python -m keras_vae.train` (2 epochs): "
        f"{result['training_peak_rss_mb']:,.0f} MB while training, "
        f"{result['command_peak_rss_mb']:,.0f} MB for the whole command with export"])
