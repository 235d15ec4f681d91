"""`python -m keras_vae.bench`: how fast training runs on this machine, and why.

One run measures, on `binarized_mnist`:
- the roofline: the FLOP rate of a large float32 matmul in TensorFlow;
- the tf.data pipeline alone, in examples/s, with the images in memory and streamed from
  a memory-mapped file (it prefetches beside the step, so a few times faster suffices);
- training throughput (median over the epochs after the first; the first epoch, with
  tracing and XLA compilation, is reported separately) with and without XLA, at batch 128
  and 512, and as a share of the roofline from the model's FLOPs per example;
- how cost grows with the hidden width (400 / 1024 / 2048) and the latent size (2 / 20 / 64);
- that the fast path and the plain path (no XLA, one step per call) give the same loss
  curve for the same seed;
- the same network in PyTorch eager mode side by side, if PyTorch is installed;
- peak resident memory of the real training command;
- the conv network on 32×32×3 8-bit images (logistic likelihood) with and without XLA,
  side by side with the same network in PyTorch, and both input pipelines against it;
- the hierarchy `--latent-dim 32,16` side by side with the same network in PyTorch;
- the spatial network (`--arch spatial`, its defaults) on 32×32×3 images side by side
  with the same network in PyTorch;
- the importance-sampled NLL (k = 5000) per image, flat on binarized MNIST and
  Fashion-MNIST, hierarchical and spatial on Fashion-MNIST, beside the time its
  matmuls and convolutions take at the roofline (their FLOPs counted by TensorFlow's
  graph profiler);
- the default network and the spatial one on 32×32×3 images in float32 and in mixed
  bfloat16 (`--precision`), alternating, and which bfloat16 instructions the CPU has.

Training here uses the same functions as `python -m keras_vae.train` (`build_model`,
`make_dataset`, the `EpochSeconds` callback). Prints a table; writes JSON.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from keras_vae.run.atomic import write_json
from keras_vae.run.cli import ArgumentParser, load_tensorflow, positive_int, run_command

PARTS = ("mlp", "conv", "hierarchy", "spatial", "nll", "precision")
"""What `--only` can name (`keras_vae.benchmarks.parts.run_benchmark` runs them)."""


def main(argv: Sequence[str]) -> None:
    parser = ArgumentParser(prog="python -m keras_vae.bench",
                            description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=positive_int, default=4,
                        help="epochs per configuration, at least 2: the first, with "
                             "tracing and compilation, is reported separately from the "
                             "steady ones (the conv, hierarchy and spatial parts time "
                             "EPOCHS − 1 alternating epochs after a warm-up one; "
                             "default: %(default)s)")
    parser.add_argument("--only", choices=PARTS, default=None,
                        help="run one part: the default MLP on binarized MNIST, the conv "
                             "network on 32×32×3 images, the hierarchy side by side with "
                             "PyTorch, the spatial network side by side with PyTorch and "
                             "its NLL's cost, the other NLLs' cost, or float32 against "
                             "mixed bfloat16 (default: all)")
    parser.add_argument("--max-examples", type=positive_int, default=None,
                        help="train on the first N examples only: a quick look whose "
                             "figures are not comparable with a full run's")
    parser.add_argument("--out", default="bench.json", help="JSON output (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch includes compilation")
    load_tensorflow(args.debug)
    from keras_vae.benchmarks.parts import run_benchmark

    if args.only in (None, "mlp"):  # the parts that print training rows
        print(_HEADER, flush=True)
    result = run_benchmark(args.epochs, (args.only,) if args.only else PARTS,
                           on_row=lambda row: print(_format_row(row), flush=True),
                           max_examples=args.max_examples)
    print(summarize(result))
    write_json(args.out, result)
    print(f"→ {args.out}")


_HEADER = ("| configuration | examples/s | first epoch (s) | steady epoch (s) | MFLOP/ex | "
           "% of roofline |\n|---|---|---|---|---|---|")


def _format_row(row: dict) -> str:
    return (f"| {row['name']} | {row['examples_per_s']:,.0f} | {row['first_epoch_s']:.2f} | "
            f"{row['steady_epoch_s']:.2f} | {row['mflop_per_example']:.2f} | "
            f"{100 * row['share_of_roofline']:.0f} % |")


def summarize(result: dict) -> str:
    cut = (f"; a quick look on {result['max_examples']:,} examples per split, not "
           f"comparable with a full run" if result.get("max_examples") else "")
    flags = f"; XLA_FLAGS {result['xla_flags']}" if result.get("xla_flags") else ""
    lines = [f"{result['machine']}; TensorFlow {result['tensorflow']}, Keras "
             f"{result['keras']}{flags}; {result['date']}{cut}"]
    if "rows" in result:
        lines += _summarize_mlp(result)
    if "conv_32x32x3" in result:
        lines += _summarize_conv(result["conv_32x32x3"])
    if "hierarchy_side_by_side" in result:
        lines.append(_summarize_hierarchy(result["hierarchy_side_by_side"]))
    if "spatial_side_by_side" in result:
        lines.append(_summarize_spatial(result["spatial_side_by_side"]))
    if "nll_cost" in result or "spatial_nll_cost" in result:
        lines += _summarize_nll(result)
    if "precision" in result:
        lines += _summarize_precision(result["precision"])
    return "\n".join(lines)


def _pipeline_line(pipeline: dict) -> str:
    return (f"tf.data pipeline alone: in memory {pipeline['in_memory_examples_per_s']:,.0f} "
            f"examples/s = {pipeline['in_memory_vs_training']:.0f}× the training step; "
            f"memory-mapped {pipeline['memory_mapped_examples_per_s']:,.0f} examples/s = "
            f"{pipeline['memory_mapped_vs_training']:.0f}×")


def _summarize_mlp(result: dict) -> list[str]:
    torch = result["torch_side_by_side"]
    torch_line = (f"the same network in PyTorch eager: {_NO_TORCH}"
                  if torch is None else
                  "the same network side by side, batch 128, " + _versus_torch(torch))
    return [
        f"matmul roofline (2048² float32): {result['matmul_roofline_gflops']:.1f} GFLOP/s",
        _pipeline_line(result["pipeline"]),
        torch_line,
        f"fast vs plain path, per-epoch loss over {result['epochs']} epochs: max relative "
        f"difference {result['fast_vs_plain_max_relative_loss_diff']:.2e}",
        f"peak RSS of `python -m keras_vae.train` (2 epochs): "
        f"{result['training_peak_rss_mb']:,.0f} MB while training, "
        f"{result['command_peak_rss_mb']:,.0f} MB for the command (its export runs in a "
        f"process of its own)"]


def _summarize_conv(conv: dict) -> list[str]:
    torch = (_NO_TORCH
             if "torch_examples_per_s" not in conv else
             f"PyTorch {conv['torch_version']} eager {conv['torch_examples_per_s']:,.0f} → "
             f"keras-vae (faster path) at {conv['keras_vs_torch']:.2f}× PyTorch")
    return [
        f"conv network, {conv['examples']:,} random 32×32×3 8-bit images, logistic "
        f"likelihood, batch 128, {_alternating(conv['rounds'])}:",
        f"  keras-vae with XLA {conv['keras_xla_examples_per_s']:,.0f} examples/s, without "
        f"{conv['keras_no_xla_examples_per_s']:,.0f} (XLA ×{conv['xla_speedup']:.2f}); "
        + torch,
        "  " + _pipeline_line(conv["pipeline"])]


def _summarize_hierarchy(side_by_side: dict | None) -> str:
    if side_by_side is None:
        return "hierarchy: " + _NO_TORCH
    levels = ",".join(str(size) for size in side_by_side["levels"])
    return f"hierarchy --latent-dim {levels}, batch 128, " + _versus_torch(side_by_side)


def _summarize_spatial(side_by_side: dict | None) -> str:
    if side_by_side is None:
        return "spatial: " + _NO_TORCH
    return (f"spatial network (width {side_by_side['width']}, latent maps of "
            f"{side_by_side['latent_channels']} channels), {side_by_side['examples']:,} "
            f"random 32×32×3 images, batch {side_by_side['batch_size']}, "
            + _versus_torch(side_by_side))


_NO_TORCH = "PyTorch not installed (pip install torch==2.13.0)"


def _versus_torch(side_by_side: dict) -> str:
    """What `alternate_epochs` measured, as one clause."""
    return (f"{_alternating(side_by_side['rounds'])}: keras-vae "
            f"{side_by_side['keras_examples_per_s']:,.0f} examples/s, PyTorch "
            f"{side_by_side['torch_version']} eager "
            f"{side_by_side['torch_examples_per_s']:,.0f} → {side_by_side['speedup']:.2f}×")


def _summarize_nll(result: dict) -> list[str]:
    lines = [f"importance-sampled NLL, per image (roofline "
             f"{result['matmul_roofline_gflops']:.0f} GFLOP/s):"]
    rows = [*result.get("nll_cost", []), *filter(None, [result.get("spatial_nll_cost")])]
    for row in rows:
        network = ("spatial, latent maps of " if row.get("arch") == "spatial"
                   else "latent ") + str(row["latent_dim"])
        lines.append(f"  {row['dataset']}, {network}, {row['likelihood']}, "
                     f"k = {row['k']}: {row['seconds_per_image']:.3f} s (and "
                     f"{row['fixed_seconds']:.1f} s once per evaluation); its matmuls and "
                     f"convolutions {row['matmul_gflop_per_image']:.1f} GFLOP = "
                     f"{row['roofline_seconds_per_image']:.3f} s at the roofline → "
                     f"{row['times_roofline']:.2f}×")
    return lines


def _summarize_precision(precision: dict) -> list[str]:
    lines = [f"--precision, {precision['examples']:,} random 32×32×3 images, "
             f"{_alternating(precision['rounds'])} each (bfloat16 instructions of this "
             f"CPU: {precision['cpu_bfloat16']}; 2048² matmuls at "
             f"{precision['matmul_roofline_gflops']['float32']:,.0f} GFLOP/s in float32, "
             f"{precision['matmul_roofline_gflops']['bfloat16']:,.0f} in bfloat16):"]
    for name, row in precision["networks"].items():
        lines.append(f"  {name} network ({row['arch']}, batch {row['batch_size']}"
                     f"{', XLA' if row['jit_compile'] else ''}): float32 "
                     f"{row['float32_examples_per_s']:,.0f} examples/s, mixed_bfloat16 "
                     f"{row['mixed_bfloat16_examples_per_s']:,.0f} → "
                     f"{row['bfloat16_speedup']:.2f}×")
    return lines


def _alternating(rounds: int) -> str:
    return f"{rounds} alternating epoch{'s' if rounds != 1 else ''}"


if __name__ == "__main__":
    sys.exit(run_command(main, "keras_vae.bench"))
