"""The names of the files in a run directory, shared by every command that reads a run.

Kept free of TensorFlow imports so that commands can check their arguments instantly.
"""

from __future__ import annotations

import json
import os

from keras_vae.cli import RunFailure, UsageError

CHECKPOINT = "best.keras"
METRICS_CSV = "metrics.csv"
BACKUP_DIR = "backup"
EXPORT_DIR = "export"
SUMMARY = "summary.json"
RUN_CONFIG = "config.json"
EVALUATION_JSON = "evaluation.json"
SAMPLES_PNG = "samples.png"
RECONSTRUCTIONS_PNG = "reconstructions.png"
MANIFOLD_PNG = "manifold.png"
LATENT_PNG = "latent_scatter.png"
CURVES_PNG = "curves.png"
PSEUDO_INPUTS_PNG = "pseudo_inputs.png"
TENSORBOARD_DIR = "tensorboard"


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


def read_run_config(run_dir: str) -> dict:
    """The settings the run was trained with (config.json, written when training starts,
    so interrupted runs and runs whose export failed have it too)."""
    path = os.path.join(run_dir, RUN_CONFIG)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise RunFailure(f"{path} is missing; pass a run directory written by "
                         f"`python -m keras_vae.train`") from None
    except (OSError, json.JSONDecodeError) as error:
        raise RunFailure(f"cannot read {path} ({error}); restore it or retrain") from None


def checkpoint_path(run_dir: str) -> str:
    """RUN_DIR/best.keras, or a usage error if the directory holds no trained run."""
    path = os.path.join(run_dir, CHECKPOINT)
    if not os.path.isfile(path):
        raise UsageError(f"{run_dir} has no {CHECKPOINT}; pass a run directory written by "
                         f"`python -m keras_vae.train`")
    return path


def load_checkpoint(run_dir: str):
    """The run's best model (a keras_vae VAE). TensorFlow is imported only here."""
    path = checkpoint_path(run_dir)
    import keras

    import keras_vae.model  # noqa: F401  (registers the VAE classes for loading)

    try:
        return keras.models.load_model(path)
    except Exception as error:  # Keras raises many types for a damaged file
        raise RunFailure(f"cannot load {path} ({type(error).__name__}); the file is damaged "
                         f"or from another version: retrain or restore it") from None
