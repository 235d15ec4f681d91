"""The measurements behind `python -m keras_vae.bench` (see that command for what it
reports); a library module, so tests call the same functions. The PyTorch networks it
compares with are in `keras_vae.benchmarks.torch_twins`; the command formats the report.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from keras_vae.benchmarks.flops import importance_sample_flops
from keras_vae.benchmarks.torch_twins import TorchConvVAE, TorchHierarchicalVAE, TorchVAE
from keras_vae.config import DEFAULT_IMAGE_SHAPE, ModelConfig, TrainConfig
from keras_vae.data.pipeline import Split, epoch_variable, load_splits, make_dataset
from keras_vae.data.storage import Storage, take
from keras_vae.model.networks.conv import conv_stages
from keras_vae.run.callbacks import EpochSeconds, TrainingEpoch
from keras_vae.run.layout import read_summary
from keras_vae.run.training import build_model

PIXELS = int(np.prod(DEFAULT_IMAGE_SHAPE))  # the benchmark trains on binarized_mnist
COLOUR_SHAPE = (32, 32, 3)
COLOUR_EXAMPLES = 10_000
"""The conv network's benchmark: 10,000 random 8-bit 32×32 RGB images (their content does
not change the cost of a step), with the default logistic mixture."""


def default_config(splits) -> TrainConfig:
    """What `python -m keras_vae.train --dataset binarized_mnist` trains on these splits."""
    train = splits["train"]
    return TrainConfig(dataset="binarized_mnist").for_data(train.image_shape,
                                                           train.pixel_kind())


def training_flops_per_example(model: ModelConfig) -> float:
    """FLOPs that one training step spends per example on the MLP's matmuls: 2 per
    multiply-add forward, and 4 backward (the gradient of the weights and of the layer's
    input), except for the first layer, whose input is the data and gets no gradient."""
    widths = [PIXELS, *model.hidden_dims]
    encoder = sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    encoder += widths[-1] * 2 * model.latent_dim
    decoder_widths = [model.latent_dim, *reversed(model.hidden_dims), PIXELS]
    decoder = sum(a * b for a, b in zip(decoder_widths, decoder_widths[1:], strict=False))
    first_layer = PIXELS * widths[1] if len(widths) > 1 else PIXELS * 2 * model.latent_dim
    return 6.0 * (encoder + decoder) - 2.0 * first_layer


def matmul_roofline(n: int = 2048, seconds: float = 3.0, dtype: str = "float32") -> float:
    """GFLOP/s of an n×n matmul in a tf.function: the practical compute peak (float32, or
    the `dtype` a mixed precision computes in)."""
    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
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


def memory_mapped(split: Split, spill_dir: str | None = None) -> Split:
    """The same split, its images copied into a memory-mapped file (the streaming path)."""
    images = take(split.images, np.arange(len(split)), Storage(0, spill_dir), on_disk=True)
    return dataclasses.replace(split, images=images)


def pipeline_paths(split: Split, batch_size: int, training_examples_per_s: float) -> dict:
    """Examples/s of the input pipeline held in memory and streamed from a memory-mapped
    file, each as a multiple of the training step's examples/s."""
    rates = {"in_memory": pipeline_throughput(split, batch_size),
             "memory_mapped": pipeline_throughput(memory_mapped(split), batch_size)}
    return {**{f"{path}_examples_per_s": rate for path, rate in rates.items()},
            **{f"{path}_vs_training": rate / training_examples_per_s
               for path, rate in rates.items()}}


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


def side_by_side_with_torch(splits, rounds: int = 5) -> dict | None:
    """The default network against its PyTorch eager twin (`alternate_epochs`); None
    without PyTorch."""
    try:
        torch_vae = TorchVAE(splits["train"].as_float())
    except ImportError:
        return None
    return alternate_epochs(default_config(splits), splits, torch_vae, rounds)


HIERARCHY_LEVELS = (32, 16)
"""The hierarchy that the benchmark trains: `--latent-dim 32,16` on binarized MNIST."""


def hierarchy_config(splits) -> TrainConfig:
    """What `python -m keras_vae.train --dataset binarized_mnist --latent-dim 32,16`
    trains on these splits."""
    base = default_config(splits)
    return dataclasses.replace(base, model=dataclasses.replace(
        base.model, latent_dim=HIERARCHY_LEVELS))


def hierarchy_side_by_side(splits, rounds: int = 3) -> dict | None:
    """The hierarchical network against its PyTorch eager twin (`alternate_epochs`);
    None without PyTorch."""
    config = hierarchy_config(splits)
    try:
        torch_vae = TorchHierarchicalVAE(splits["train"].as_float(), HIERARCHY_LEVELS,
                                         config.model.hidden_dims[-1])
    except ImportError:
        return None
    return {"levels": list(HIERARCHY_LEVELS),
            **alternate_epochs(config, splits, torch_vae, rounds)}


def alternate_epochs(config: TrainConfig, splits, torch_vae, rounds: int) -> dict:
    """Alternates one Keras epoch of `config` and one epoch of its PyTorch twin, `rounds`
    times after one warm-up epoch each, so both see the same machine conditions (this
    machine's speed drifts by tens of percent over minutes); median examples/s of each."""
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


def colour_split(examples: int = COLOUR_EXAMPLES) -> Split:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (examples, *COLOUR_SHAPE), dtype=np.uint8)
    return Split(images=images, labels=None, pixel_max=255)


def colour_conv_config(jit_compile: bool) -> TrainConfig:
    """What `python -m keras_vae.train --arch conv --prior normal` trains on 32×32 RGB 8-bit
    images."""
    model = ModelConfig(arch="conv", latent_dim=20, prior="normal", image_shape=COLOUR_SHAPE,
                        likelihood="logistic")
    return TrainConfig(model=model, dataset="npz:random", jit_compile=jit_compile,
                       pixel_kind="8-bit")


def conv_side_by_side(rounds: int = 3, examples: int = COLOUR_EXAMPLES) -> dict:
    """The conv network on 32×32×3 images: keras-vae with and without XLA, and the same
    network in PyTorch (if installed), alternating epochs as `side_by_side_with_torch`
    does; then both input pipelines against the faster Keras step."""
    split = colour_split(examples)
    assert conv_stages(COLOUR_SHAPE) == 2  # the network TorchConvVAE mirrors
    try:
        torch_vae = TorchConvVAE(split.images)
    except ImportError:
        torch_vae = None
    data = make_dataset(split, 128, shuffle_seed=0)
    seconds, models = {}, {}
    for name, jit in (("keras_xla", True), ("keras_no_xla", False)):
        keras.utils.set_random_seed(0)
        models[name] = build_model(colour_conv_config(jit))
    for _ in range(rounds + 1):  # the first round: tracing, compilation, warm-up
        for name, vae in models.items():
            timer = EpochSeconds()
            vae.fit(data, epochs=1, callbacks=[timer], verbose=0, shuffle=False)
            seconds.setdefault(name, []).extend(timer.seconds)
        if torch_vae is not None:
            seconds.setdefault("torch", []).append(torch_vae.epoch())
    rates = {f"{name}_examples_per_s": len(split) / float(np.median(times[1:]))
             for name, times in seconds.items()}
    best_keras = max(rates["keras_xla_examples_per_s"], rates["keras_no_xla_examples_per_s"])
    result = {"rounds": rounds, "image_shape": list(COLOUR_SHAPE), "examples": len(split),
              **rates, "xla_speedup": rates["keras_xla_examples_per_s"]
              / rates["keras_no_xla_examples_per_s"],
              "pipeline": pipeline_paths(split, 128, best_keras)}
    if torch_vae is not None:
        result.update(torch_version=torch_vae.torch.__version__,
                      keras_vs_torch=best_keras / rates["torch_examples_per_s"])
    return result


NLL_COST_EXAMPLES = 300
"""Test images whose importance-sampled NLL the benchmark times, beside the first third of
them: whole batches of `importance_nll`'s 100, the shapes every batch of an evaluation
runs, and past `FUSED_FROM_SAMPLES`, so the logistic is fused as in a whole evaluation.
The difference of the two times is the cost of each further image; what is left is
paid once per evaluation (tracing and compiling, about a second), which a 100-image
timing had counted as 0.006-0.012 s per image (2026-11-30)."""


def nll_cost(roofline_gflops: float, examples: int = NLL_COST_EXAMPLES, k: int = 5000
             ) -> list[dict]:
    """Seconds per image of `python -m keras_vae.evaluate`'s NLL (k importance samples)
    on each data set's first test images, for the one-level model (`--latent-dim 20`,
    N(0, I)) on binarized MNIST (Bernoulli, its default) and on Fashion-MNIST (logistic
    mixture), and the hierarchy `--latent-dim 32,16` on Fashion-MNIST, beside the time
    their per-sample matmuls take at the matmul roofline (`time_nll`). The weights are
    fresh: the work does not depend on them."""
    rows = []
    for dataset, levels in (("binarized_mnist", 20), ("fashion_mnist", 20),
                            ("fashion_mnist", HIERARCHY_LEVELS)):
        splits = load_splits(dataset, max_examples=examples)
        flags = ModelConfig(latent_dim=levels, prior="normal")
        config = TrainConfig(dataset=dataset, model=flags).for_data(
            splits["train"].image_shape, splits["train"].pixel_kind())
        keras.utils.set_random_seed(0)
        vae = build_model(config)
        rows.append({"dataset": dataset, "arch": config.model.arch,
                     "latent_dim": config.model.latent_dim,
                     "likelihood": config.model.likelihood, "k": k,
                     **time_nll(vae, splits["test"].as_float(), k, roofline_gflops)})
    return rows


def time_nll(vae, images: np.ndarray, k: int, roofline_gflops: float) -> dict:
    """Seconds per image of an evaluation's NLL, as the marginal cost of `images` beyond
    their first third (`NLL_COST_EXAMPLES`), and the fixed seconds an evaluation pays once;
    after one untimed call, which pays TensorFlow's own first-call costs."""
    from keras_vae.measure.nll import importance_nll

    fewer = images[:max(1, len(images) // 3)]
    importance_nll(vae, fewer, k)
    seconds = {}
    for part in (fewer, images):
        start = time.perf_counter()
        importance_nll(vae, part, k)
        seconds[len(part)] = time.perf_counter() - start
    per_image = (seconds[len(images)] - seconds[len(fewer)]) / (len(images) - len(fewer))
    gflop = importance_sample_flops(vae) * k / 1e9
    return {"examples": len(images), "fewer_examples": len(fewer),
            "seconds_per_image": per_image,
            "fixed_seconds": seconds[len(fewer)] - len(fewer) * per_image,
            "matmul_gflop_per_image": gflop,
            "roofline_seconds_per_image": gflop / roofline_gflops,
            "times_roofline": per_image * roofline_gflops / gflop}


def training_peak_memory_mb(epochs: int = 2, max_examples: int | None = None
                            ) -> tuple[float, float]:
    """Peak RSS (MB) of the real `python -m keras_vae.train` command (default settings),
    as its summary.json records it: (while training, the training command by the time it
    wrote the summary; the export runs in a process of its own)."""
    cut = [] if max_examples is None else ["--max-examples", str(max_examples)]
    with tempfile.TemporaryDirectory() as out:
        run_dir = os.path.join(out, "run")
        subprocess.run([sys.executable, "-m", "keras_vae.train", "--dataset",
                        "binarized_mnist", "--epochs", str(epochs), "--verbose", "0",
                        "--no-export", "--out", run_dir, *cut], check=True,
                       capture_output=True, timeout=1800)
        summary = read_summary(run_dir)
    return summary["training_peak_rss_mb"], summary["command_peak_rss_mb"]


def mlp_benchmark(epochs: int, on_row: Callable[[dict], None],
                   max_examples: int | None) -> dict:
    splits = load_splits("binarized_mnist", max_examples=max_examples)
    base = default_config(splits)
    roofline = matmul_roofline()
    result = {"matmul_roofline_gflops": roofline, "rows": []}

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
        on_row(measured)
        return measured

    plain = dataclasses.replace(base, jit_compile=False, steps_per_execution=1)
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
    result["pipeline"] = pipeline_paths(splits["train"], 128, fast["examples_per_s"])
    result["torch_side_by_side"] = side_by_side_with_torch(splits)
    result["training_peak_rss_mb"], result["command_peak_rss_mb"] = training_peak_memory_mb(
        max_examples=max_examples)
    return result


