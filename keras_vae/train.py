"""`python -m keras_vae.train`: train a VAE, evaluate it, draw it, export it.

This command turns flags into the run's one record, a `TrainConfig` (validated as it is
built), hands it to `keras_vae.run.training.train`, then exports the trained run with
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
from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.config.settings import add_flags, values_from
from keras_vae.data.sources import check_source_path
from keras_vae.run.cli import ArgumentParser, RunFailure, UsageError, load_tensorflow, run_command
from keras_vae.run.layout import CHECKPOINT, SUMMARY, default_run_dir, read_summary
from keras_vae.run.resume import refuse_conflicts

GROUPS = {"data": "data", "model": "model", "objective": "objective and optimization",
          "run": "run directory and execution"}
"""The --help sections, by the `group` each setting names (`keras_vae.config.settings`)."""


def make_parser() -> argparse.ArgumentParser:
    """The flags: one per setting of `TrainConfig` and `ModelConfig` (declared on their
    fields), and the few that say what to do with the run rather than what it is."""
    parser = ArgumentParser(
        prog="python -m keras_vae.train",
        description="Train a variational autoencoder, evaluate it on the test split, "
                    "write sample pictures and export the model (SavedModel, ONNX, LiteRT).")
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    for record_type in (TrainConfig, ModelConfig):
        add_flags(groups, record_type)
    run = groups["run"]
    run.add_argument("--resume", action="store_true",
                     help="a finished run in --out trained with --keep-backup: train it on "
                          "to --epochs, then evaluate and export again (an interrupted run "
                          "resumes anyway)")
    run.add_argument("--overwrite", action="store_true",
                     help="a finished run in --out: remove its files and start afresh")
    run.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                     help="Keras verbosity: 1 progress bar, 2 one line per epoch "
                          "(default: 1 on a terminal, else 2)")
    return parser


def config_from(args: argparse.Namespace) -> TrainConfig:
    """The run's record from parsed flags; `TrainConfig` validates the combination."""
    run = values_from(args, TrainConfig)
    return TrainConfig(model=ModelConfig(**values_from(args, ModelConfig)),
                       **{**run, "out": run["out"] or default_run_dir(args.dataset)})


def main(argv: Sequence[str]) -> None:
    args = make_parser().parse_args(argv)
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other; pass one")
    config = config_from(args)
    check_source_path(config.dataset)  # mistakes answer before TensorFlow loads
    refuse_conflicts(config, args.resume, args.overwrite)
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    load_tensorflow(args.debug)
    from keras_vae.run.training import report, train

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
