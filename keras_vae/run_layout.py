"""The names of the files in a run directory, shared by every command that reads a run.

Kept free of TensorFlow imports so that commands can check their arguments instantly.
"""

from __future__ import annotations

import json
import os

from keras_vae.cli import RunFailure

CHECKPOINT = "best.keras"
METRICS_CSV = "metrics.csv"
BACKUP_DIR = "backup"
EXPORT_DIR = "export"
SUMMARY = "summary.json"
SAMPLES_PNG = "samples.png"
RECONSTRUCTIONS_PNG = "reconstructions.png"
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
