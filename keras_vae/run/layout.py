"""The names of the files in a run directory, shared by every command that reads a run.

Kept free of TensorFlow imports so that commands can check their arguments instantly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings

from keras_vae.config import TrainConfig
from keras_vae.run.atomic import write_json
from keras_vae.run.cli import RunFailure, UsageError
from keras_vae.run.lock import live_owner

CHECKPOINT = "best.keras"
METRICS_CSV = "metrics.csv"
BACKUP_DIR = "backup"
EXPORT_DIR = "export"
SUMMARY = "summary.json"
RUN_CONFIG = "config.json"
EVALUATION_JSON = "evaluation.json"
SCORING_JSON = "scoring.json"
"""The calibration of the run's anomaly scores (`keras_vae.measure.scoring`)."""
EVALUATION_PARTIAL = "evaluation_partial.npz"
SPLITS = ("test", "validation", "train")
"""The splits `evaluate` measures; the test split's files keep their first names."""
SAMPLES_PNG = "samples.png"
RECONSTRUCTIONS_PNG = "reconstructions.png"
MANIFOLD_PNG = "manifold.png"
LATENT_PNG = "latent_scatter.png"
CURVES_PNG = "curves.png"
PSEUDO_INPUTS_PNG = "pseudo_inputs.png"
TEMPERATURES_PNG = "temperatures.png"
LEVELS_PNG = "levels.png"
TENSORBOARD_DIR = "tensorboard"


def default_run_dir(dataset: str) -> str:
    """runs/<date>-<time>-<data's name>: where a run goes unless told."""
    name = os.path.basename(os.path.normpath(dataset.split(":", 1)[-1])) or "data"
    return os.path.join("runs", f"{time.strftime('%Y%m%d-%H%M%S')}-{name}")


def evaluation_files(split: str) -> tuple[str, str]:
    """(results, saved NLLs so far) of an evaluation of `split`: evaluation.json for the
    test split, evaluation_train.json for the training split, and so on, so that measuring
    one split never overwrites or resumes another's."""
    if split == "test":
        return EVALUATION_JSON, EVALUATION_PARTIAL
    return f"evaluation_{split}.json", f"evaluation_{split}_partial.npz"


def read_evaluation(run_dir: str, split: str = "test") -> dict | None:
    """The run's evaluation of `split`, or None if it has none (or an unreadable one)."""
    try:
        with open(os.path.join(run_dir, evaluation_files(split)[0])) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_summary(run_dir: str) -> dict:
    """The run's summary.json, or {} if the run has none (yet)."""
    path = os.path.join(run_dir, SUMMARY)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise RunFailure(f"cannot read {path} ({error}); fix or remove it and re-run") from None


def read_run_config(run_dir: str) -> TrainConfig:
    """The settings the run was trained with: the one record every command reads.

    config.json is written when training starts, so interrupted runs and runs whose export
    failed have it too.
    """
    path = os.path.join(run_dir, RUN_CONFIG)
    try:
        with open(path) as f:
            stored = json.load(f)
    except FileNotFoundError:
        raise RunFailure(f"{path} is missing; pass a run directory written by "
                         f"`python -m keras_vae.train`") from None
    except (OSError, json.JSONDecodeError) as error:
        raise RunFailure(f"cannot read {path} ({error}); restore it or retrain") from None
    try:
        # `out` is where the run is now: it may have been moved, or recorded relative to
        # another working directory.
        return dataclasses.replace(TrainConfig.from_dict(stored), out=run_dir)
    except (KeyError, TypeError, UsageError):
        raise RunFailure(f"{path} has settings this version does not understand; it was "
                         f"written by another version") from None


def write_run_config(config: TrainConfig) -> None:
    """Records the run's settings in RUN_DIR/config.json, once, as the run starts."""
    write_json(os.path.join(config.out, RUN_CONFIG), config.to_dict())


def ensure_not_training(run_dir: str) -> None:
    """Refuses a run that a live training process still holds (its lock): its checkpoint
    is not final, so what a command would compute from it would soon be stale."""
    owner = live_owner(run_dir)
    if owner is not None:
        raise UsageError(f"{run_dir} is being trained by process {owner}; wait until it "
                         f"finishes, then run this again")


def checkpoint_path(run_dir: str) -> str:
    """RUN_DIR/best.keras, or a usage error if the directory holds no trained run (saying
    so when training started there but never finished an epoch)."""
    path = os.path.join(run_dir, CHECKPOINT)
    if os.path.isfile(path):
        return path
    if not os.path.isdir(run_dir):
        raise UsageError(f"{run_dir}: no such directory; pass a run directory written by "
                         f"`python -m keras_vae.train`")
    if os.path.isfile(os.path.join(run_dir, RUN_CONFIG)):
        raise UsageError(f"{run_dir} has no {CHECKPOINT}: its training never completed an "
                         f"epoch; train it (the same command resumes it) or pass another run")
    raise UsageError(f"{run_dir} has no {CHECKPOINT}; pass a run directory written by "
                     f"`python -m keras_vae.train`")


def directory_bytes(path: str) -> int:
    """The size of every file under `path`, in bytes: what a run costs on disk."""
    return sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(path) for name in names
               if not os.path.islink(os.path.join(folder, name)))


def check_trained_run(run_dir: str) -> None:
    """Refuses, before TensorFlow loads, a directory that holds no trained run or a run
    that a live training still holds (see `checkpoint_path`, `ensure_not_training`)."""
    checkpoint_path(run_dir)
    ensure_not_training(run_dir)


def load_checkpoint(run_dir: str, config: TrainConfig | None = None):
    """The run's best model (a keras_vae VAE), compiled for `evaluate` with the run's XLA
    and steps-per-call settings (`config`, else the run's record): best.keras holds no
    optimizer state and loads uncompiled. TensorFlow is imported only here."""
    path = checkpoint_path(run_dir)
    import keras

    import keras_vae.model.vae  # noqa: F401  (registers the VAE class for loading)
    from keras_vae.model.precision import float32_copy

    # Keras's warnings are shown only if the model loads: a file it cannot load gets the
    # one line below, not the warnings of its attempt first.
    with warnings.catch_warnings(record=True) as caught:
        # Checkpoints written before best.keras was saved uncompiled restore a compiled
        # model without optimizer state, which Keras warns of.
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
        try:
            model = keras.models.load_model(path)
        except Exception as error:  # Keras raises many types for a damaged file
            raise RunFailure(f"cannot load {path} ({type(error).__name__}); the file is "
                             f"damaged or from another version: retrain or restore it") from None
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename,
                               warning.lineno)
    model = float32_copy(model)  # evaluation and exports compute in float32
    if not model.compiled:
        config = config or read_run_config(run_dir)
        model.compile(jit_compile=config.jit_compile,
                      steps_per_execution=config.steps_per_execution)
    return model


def load_run(run_dir: str):
    """(the run's best model, its TrainConfig): what evaluate, plot and export start from."""
    checkpoint_path(run_dir)
    config = read_run_config(run_dir)
    return load_checkpoint(run_dir, config), config
