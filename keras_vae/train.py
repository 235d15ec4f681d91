"""`python -m keras_vae.train`: train a VAE, evaluate it, draw it, export it.

This command turns flags into the run's one record, a `TrainConfig` (validated as it is
built), hands it to `keras_vae.training.train`, then exports the trained run with
`python -m export` and reports it. Flags are checked before TensorFlow loads,
so `--help` and mistakes answer at once.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence

import keras_vae
from keras_vae.cli import (
    ArgumentParser,
    RunFailure,
    UsageError,
    int_list,
    load_tensorflow,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    run_command,
    size_pair,
)
from keras_vae.config import (
    ARCHITECTURES,
    LIKELIHOOD_CHOICES,
    LR_SCHEDULES,
    OBJECTIVES,
    PRIORS,
    STRATEGIES,
    ModelConfig,
    TrainConfig,
)
from keras_vae.likelihoods import LIKELIHOODS
from keras_vae.resume import refuse_conflicts
from keras_vae.run_layout import CHECKPOINT, SUMMARY, default_run_dir, read_summary
from keras_vae.sources import check_source_path

MODEL_DEFAULTS, RUN_DEFAULTS = ModelConfig(), TrainConfig()


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--latent-dim", type=int_list, default=MODEL_DEFAULTS.latent_dim,
                       help="size of z; 2 gives plottable latent maps. Several sizes, "
                            "nearest the image first (32,16), train a hierarchical VAE "
                            "with a level each (default: 20; 32,16 for conditional "
                            "models of 8-bit images)")
    group.add_argument("--hidden-dims", type=int_list, default=MODEL_DEFAULTS.hidden_dims,
                       help="hidden widths, e.g. 400 or 512,256 (default: 400)")
    group.add_argument("--arch", choices=ARCHITECTURES, default=MODEL_DEFAULTS.arch,
                       help="mlp: dense ReLU layers; gated: gated dense layers "
                            "(h·sigmoid(gate)); conv: strided convolutions around them "
                            "(default: %(default)s)")
    group.add_argument("--prior", choices=PRIORS, default=MODEL_DEFAULTS.prior,
                       help="normal: N(0, I); vamp: the VampPrior, a mixture over learned "
                            "pseudo-inputs (on a hierarchy's top level) (default: vamp for "
                            "8-bit images without --conditional, else normal)")
    group.add_argument("--pseudo-inputs", type=positive_int, default=None,
                       help="components of --prior vamp (default: 500); given alone, "
                            "it asks for --prior vamp")
    group.add_argument("--conditional", action="store_true",
                       help="a conditional VAE: encoder and decoder also take the label, so "
                            "samples can be asked for by class (labelled data; not with "
                            "--prior vamp)")
    group.add_argument("--class-components", type=positive_int, default=None,
                       help="Gaussians in each class's prior p(z|y) of a --conditional "
                            "model: 1, or a mixture with learned weights (default: 50)")
    group.add_argument("--likelihood", choices=LIKELIHOOD_CHOICES,
                       default=MODEL_DEFAULTS.likelihood,
                       help="p(x|z): bernoulli for binary pixels, logistic (a discretized "
                            "logistic mixture) for 8-bit ones; auto picks by the data "
                            "(default: %(default)s)")
    group.add_argument("--mixture-components", type=positive_int, default=None,
                       help=f"logistics per pixel and channel of --likelihood logistic "
                            f"(default: {LIKELIHOODS['logistic'].default_components})")
    group.add_argument("--seed", type=int, default=MODEL_DEFAULTS.seed,
                       help="seed of weights, shuffling and sampling (default: %(default)s)")


def _add_objective_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("objective and optimization")
    group.add_argument("--objective", choices=OBJECTIVES, default=MODEL_DEFAULTS.objective,
                       help="elbo, or iwae: the importance-weighted bound of Burda et al. "
                            "(default: %(default)s)")
    group.add_argument("--iwae-k", type=positive_int, default=None,
                       help="samples per image of --objective iwae (default: 5)")
    group.add_argument("--beta", type=non_negative_float, default=MODEL_DEFAULTS.beta,
                       help="KL weight in the training objective (default: %(default)s)")
    group.add_argument("--free-bits", type=non_negative_float,
                       default=MODEL_DEFAULTS.free_bits, metavar="NATS",
                       help="nats of KL per latent level left uncharged: each level's KL "
                            "enters the objective as max(NATS, its batch mean), so no level "
                            "collapses below it (--objective elbo; default: %(default)s)")
    group.add_argument("--dropout", type=non_negative_float, default=MODEL_DEFAULTS.dropout,
                       metavar="P",
                       help="zero each of the decoder's dense hidden features with "
                            "probability P while training (a hierarchy's top-down updates "
                            "too): regularizes p(x|z) where training images fit far better "
                            "than test images (default: %(default)s)")
    group.add_argument("--kl-warmup-epochs", type=non_negative_int,
                       default=RUN_DEFAULTS.kl_warmup_epochs,
                       help="raise the KL weight linearly from 0 to --beta over this many "
                            "epochs (default: %(default)s, no warm-up)")
    group.add_argument("--epochs", type=positive_int, default=RUN_DEFAULTS.epochs,
                       help="training epochs (default: %(default)s)")
    group.add_argument("--batch-size", type=positive_int, default=RUN_DEFAULTS.batch_size,
                       help="examples per step (default: %(default)s)")
    group.add_argument("--learning-rate", type=positive_float,
                       default=RUN_DEFAULTS.learning_rate,
                       help="Adam learning rate (default: %(default)s)")
    group.add_argument("--weight-decay", type=non_negative_float,
                       default=RUN_DEFAULTS.weight_decay,
                       help="decoupled weight decay of the kernels (AdamW): each step "
                            "shrinks them by learning rate × this; biases and priors are "
                            "left (default: %(default)s, plain Adam)")
    group.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=RUN_DEFAULTS.lr_schedule,
                       help="constant, or cosine: decay to 0 over --epochs "
                            "(default: %(default)s)")
    group.add_argument("--early-stopping-patience", type=positive_int, default=None,
                       help="stop when the validation negative ELBO has not improved for "
                            "this many epochs (after the warm-up); the best weights are "
                            "kept (default: train all --epochs)")


def _add_data_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default=RUN_DEFAULTS.dataset,
                       help="a TFDS dataset with images (e.g. mnist, binarized_mnist, "
                            "fashion_mnist, cifar10), folder:PATH (image files; class "
                            "subfolders give labels) or npz:PATH (arrays images, labels, "
                            "label_names) (default: %(default)s)")
    group.add_argument("--image-size", type=size_pair, default=None,
                       help="resize every image to H,W, e.g. 64,48, or to a square of one "
                            "size, e.g. 64 (default: keep the data's size; a folder of mixed "
                            "sizes needs it)")
    group.add_argument("--data-dir", default=None,
                       help="TFDS data directory (default: $TFDS_DATA_DIR, else TFDS's)")
    group.add_argument("--accept-manual-files", action="store_true",
                       help="prepare the dataset from the source files in "
                            "DATA_DIR/downloads/manual even if their checksums differ from "
                            "TFDS's (the same data recompressed, as Linux packages ship it)")
    group.add_argument("--max-examples", type=positive_int, default=None,
                       help="use only the first N examples of each split (quick runs)")
    group.add_argument("--memory-budget-mb", type=non_negative_int, default=None,
                       help="hold the images in memory up to this size; a larger data set "
                            "is decoded once into memory-mapped files in the run directory "
                            "and streamed from disk, with the same batches (default: a "
                            "quarter of this machine's memory)")
    group.add_argument("--max-image-pixels", type=positive_int,
                       default=RUN_DEFAULTS.max_image_pixels,
                       help="refuse an image file (or npz image) that declares more pixels "
                            "(height × width) than this, before decoding it; decoding takes "
                            "up to about 19 bytes a pixel (default: %(default)s)")
    group.add_argument("--dynamic-binarization", action="store_true",
                       help="grayscale datasets: train on a fresh Bernoulli draw of the "
                            "pixels each epoch (IWAE paper); evaluate on one fixed draw")


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run directory and execution")
    group.add_argument("--out", default=None,
                       help="run directory (default: a new folder under runs/)")
    group.add_argument("--resume", action="store_true",
                       help="a finished run in --out trained with --keep-backup: train it "
                            "on to --epochs, then evaluate and export again (an "
                            "interrupted run resumes anyway)")
    group.add_argument("--keep-backup", action="store_true",
                       help="keep the resume state (backup/: weights and optimizer state) "
                            "when training completes, so that --resume can train the run "
                            "on later (default: removed, it is the largest file)")
    group.add_argument("--overwrite", action="store_true",
                       help="a finished run in --out: remove its files and start afresh")
    group.add_argument("--strategy", choices=STRATEGIES, default=RUN_DEFAULTS.strategy,
                       help="tf.distribute strategy; multi_worker reads TF_CONFIG "
                            "(default: %(default)s)")
    group.add_argument("--no-jit", action="store_true",
                       help="do not compile the training step with XLA (--arch conv "
                            "never does: XLA's CPU convolutions train slower)")
    group.add_argument("--steps-per-execution", type=positive_int,
                       default=RUN_DEFAULTS.steps_per_execution,
                       help="training steps per compiled call (default: %(default)s)")
    group.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                       help="Keras verbosity: 1 progress bar, 2 one line per epoch "
                            "(default: 1 on a terminal, else 2)")
    group.add_argument("--no-export", action="store_true",
                       help="skip the export at the end (run python -m export RUN_DIR "
                            "later, e.g. on another machine)")


def make_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m keras_vae.train",
        description="Train a variational autoencoder, evaluate it on the test split, "
                    "write sample pictures and export the model (SavedModel, ONNX, LiteRT).")
    for add_flags in (_add_data_flags, _add_model_flags, _add_objective_flags,
                      _add_run_flags):
        add_flags(parser)
    return parser


def config_from(args: argparse.Namespace) -> TrainConfig:
    """The run's record from parsed flags; `TrainConfig` validates the combination."""
    model = ModelConfig(latent_dim=args.latent_dim, hidden_dims=args.hidden_dims,
                        beta=args.beta, free_bits=args.free_bits, dropout=args.dropout,
                        seed=args.seed, arch=args.arch,
                        objective=args.objective, iwae_k=args.iwae_k, prior=args.prior,
                        pseudo_inputs=args.pseudo_inputs,
                        likelihood=args.likelihood, mixture_components=args.mixture_components,
                        conditional=args.conditional,
                        class_components=args.class_components)
    return TrainConfig(
        model=model, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, weight_decay=args.weight_decay,
        dynamic_binarization=args.dynamic_binarization,
        data_dir=args.data_dir, accept_manual_files=args.accept_manual_files,
        out=args.out or default_run_dir(args.dataset),
        jit_compile=False if args.no_jit else None,
        steps_per_execution=args.steps_per_execution, max_examples=args.max_examples,
        strategy=args.strategy, kl_warmup_epochs=args.kl_warmup_epochs,
        lr_schedule=args.lr_schedule, early_stopping_patience=args.early_stopping_patience,
        export=not args.no_export, image_size=args.image_size,
        memory_budget_mb=args.memory_budget_mb, keep_backup=args.keep_backup,
        max_image_pixels=args.max_image_pixels)


def main(argv: Sequence[str]) -> None:
    args = make_parser().parse_args(argv)
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other; pass one")
    config = config_from(args)
    check_source_path(config.dataset)  # mistakes answer before TensorFlow loads
    refuse_conflicts(config, args.resume, args.overwrite)
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    load_tensorflow(args.debug)
    from keras_vae.training import report, train

    summary = train(config, verbose, args.resume, args.overwrite)
    if summary is None:
        return  # a worker other than the chief: the chief exports and reports
    if config.export:
        _export(config.out, args.debug)
    report(read_summary(config.out), config.out)


def _export(run_dir: str, debug: bool) -> None:
    """Exports the finished run with `python -m export RUN_DIR`, in a process of its own:
    export/ builds on this package, so the package never imports it. A failed export
    leaves the trained run complete (its summary records the error) and says how to retry
    it; the export's own line above says what failed."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(keras_vae.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [root, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "export", run_dir, *(["--debug"] if debug else [])]
    if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        raise RunFailure(f"the export failed (see above). Training finished and is saved "
                         f"({SUMMARY}, {CHECKPOINT}); retry the export with: "
                         f"python -m export {run_dir}")


if __name__ == "__main__":
    sys.exit(run_command(main, "keras_vae.train"))
