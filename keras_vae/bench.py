"""`python -m keras_vae.bench`: how fast training runs on this machine, and why.

One run measures, on `binarized_mnist`:
- the roofline: the FLOP rate of a large float32 matmul in TensorFlow;
- the tf.data pipeline alone, in examples/s, with the images in memory and streamed from
  a memory-mapped file (both must be ≥ 10× faster than training);
- training throughput (median over the epochs after the first; the first epoch, with
  tracing and XLA compilation, is reported separately) with and without XLA, at batch 128
  and 512, and as a share of the roofline from the model's FLOPs per example;
- how cost grows with the hidden width (400 / 1024 / 2048) and the latent size (2 / 20 / 64);
- that the fast path and the plain path (no XLA, one step per call) give the same loss
  curve for the same seed;
- the same network in PyTorch eager mode side by side, if PyTorch is installed;
- peak resident memory of the real training command;
- the conv network on 32×32×3 8-bit images (logistic likelihood) with and without XLA,
  side by side with the same network in PyTorch, and both input pipelines against it.

Training here uses the same functions as `python -m keras_vae.train` (`build_model`,
`make_dataset`, the `EpochSeconds` callback). Prints a table; writes JSON.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from keras_vae.atomic import write_json
from keras_vae.cli import ArgumentParser, load_tensorflow, positive_int, run_command


def main(argv: Sequence[str]) -> None:
    parser = ArgumentParser(prog="python -m keras_vae.bench",
                            description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=positive_int, default=4,
                        help="epochs per configuration; the first is reported separately "
                             "(default: %(default)s)")
    parser.add_argument("--only", choices=("mlp", "conv"), default=None,
                        help="run one part: the default MLP on binarized MNIST, or the conv "
                             "network on 32×32×3 images (default: both)")
    parser.add_argument("--out", default="bench.json", help="JSON output (default: %(default)s)")
    parser.add_argument("--debug", action="store_true",
                        help="show Python tracebacks and TensorFlow's own log lines")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch includes compilation")
    load_tensorflow(args.debug)
    from keras_vae.benchmarks import run_benchmark, summarize

    result = run_benchmark(args.epochs, (args.only,) if args.only else ("mlp", "conv"))
    print(summarize(result))
    write_json(args.out, result)
    print(f"→ {args.out}")


if __name__ == "__main__":
    sys.exit(run_command(main, "keras_vae.bench"))
