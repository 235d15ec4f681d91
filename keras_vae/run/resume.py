"""What a run directory already holds, and what a new training may do with it.

- Empty or new: train from scratch.
- Interrupted (a crash, SIGKILL, power loss, Ctrl-C): rerunning the same command resumes
  from the last completed epoch (Keras's BackupAndRestore state in `backup/`). Metrics of
  epochs after that point are dropped from `metrics.csv`, so every epoch appears once.
- Finished (`summary.json` exists): refused unless `--resume` (train on to `--epochs`
  from the backup that `--keep-backup` kept, then evaluate and export again) or
  `--overwrite` (remove the previous run's files, saying which). Without
  `--keep-backup`, the backup is removed when a run completes.
- Trained with other settings (`config.json` differs in model or data): refused, since
  its weights cannot continue this training.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil

from keras_vae.config import TrainConfig
from keras_vae.run.atomic import atomic_path
from keras_vae.run.cli import RunFailure, UsageError
from keras_vae.run.layout import (
    BACKUP_DIR,
    CHECKPOINT,
    CURVES_PNG,
    EXPORT_DIR,
    LATENT_PNG,
    LEVELS_PNG,
    MANIFOLD_PNG,
    METRICS_CSV,
    PSEUDO_INPUTS_PNG,
    RECONSTRUCTIONS_PNG,
    RUN_CONFIG,
    SAMPLES_PNG,
    SPLITS,
    SUMMARY,
    TEMPERATURES_PNG,
    TENSORBOARD_DIR,
    evaluation_files,
    read_run_config,
)

RUN_FILES = (CHECKPOINT, METRICS_CSV, BACKUP_DIR, EXPORT_DIR, SUMMARY, SAMPLES_PNG,
             RECONSTRUCTIONS_PNG, MANIFOLD_PNG, LATENT_PNG, CURVES_PNG, PSEUDO_INPUTS_PNG,
             TEMPERATURES_PNG, LEVELS_PNG, TENSORBOARD_DIR, RUN_CONFIG,
             *(name for split in SPLITS for name in evaluation_files(split)))
"""Everything a run writes; `--overwrite` removes exactly these, nothing else."""

MUST_MATCH = ("model", "dataset", "batch_size", "dynamic_binarization", "max_examples",
              "image_size", "split_seed")
"""Settings a resumed training must share with the run it continues."""

DEFAULTS_FROM_DATA = ("batch_size",)
"""Run settings whose default `TrainConfig.for_data` settles from the images (None until
then); a flag that sets one is checked before the data load like any other."""
MODEL_FIELDS_FROM_DATA = ("image_shape", "likelihood", "mixture_components", "label_names")
"""Fields of the model's record that `TrainConfig.for_data` fills in from the loaded data."""


RESUME_STATE = (BACKUP_DIR, RUN_CONFIG, METRICS_CSV, CHECKPOINT)
"""What a training continues from; a worker other than the chief trains in a temporary
directory of its own, which starts as a copy of these (`copy_resume_state`)."""


def copy_resume_state(run_dir: str, worker_dir: str) -> None:
    """Copies what `run_dir` holds of `RESUME_STATE` into `worker_dir`, so that a worker
    resumes from the chief's epoch, weights and optimizer. Without it a worker started
    from scratch beside a resuming chief: one model trained in two states until their
    epoch counts parted and the collectives failed."""
    for name in RESUME_STATE:
        source = os.path.join(run_dir, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(worker_dir, name))
        elif os.path.isfile(source):
            shutil.copy2(source, os.path.join(worker_dir, name))


def refuse_different_starts(epochs_by_worker: list[int], run_dir: str) -> None:
    """Every worker must continue from the same epoch (see `copy_resume_state`)."""
    if len(set(epochs_by_worker)) > 1:
        listed = ", ".join(str(epochs) for epochs in epochs_by_worker)
        raise UsageError(f"the workers see different completed epochs in {run_dir} "
                         f"({listed}, in task order); every worker must read the same "
                         f"--out: put it on a filesystem they all mount")


def create(run_dir: str) -> bool:
    """Creates the run directory (so that it can be locked), or says why it cannot.
    Returns whether it was created here (and so may be removed if nothing starts)."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise UsageError(f"--out {run_dir} is a file, not a directory; choose another path")
    existed = os.path.isdir(run_dir)
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create run directory {run_dir}: {error.strerror}") from None
    if not os.access(run_dir, os.W_OK):
        raise UsageError(f"run directory {run_dir} is not writable; choose another --out")
    return not existed


def remove_if_empty(run_dir: str) -> None:
    """Removes a run directory that training created but never wrote into."""
    try:
        os.rmdir(run_dir)
    except OSError:
        pass  # not empty, or already gone


def refuse_conflicts(config: TrainConfig, resume: bool = False, overwrite: bool = False
                     ) -> None:
    """What can be refused from the flags and the run directory alone, before TensorFlow
    or the data load: a finished run without --resume or --overwrite, and a run trained
    with other settings (except those the data decide)."""
    if not os.path.isdir(config.out):
        return
    finished = os.path.exists(os.path.join(config.out, SUMMARY))
    if finished and not (resume or overwrite):
        raise UsageError(f"{config.out} holds a finished run; pass --resume to train it on "
                         f"to --epochs, --overwrite to replace it, or a new --out")
    if overwrite:
        return
    check_same_settings(config, before_data=True)
    if finished and not os.path.isdir(os.path.join(config.out, BACKUP_DIR)):
        raise UsageError(f"{config.out} is finished and kept no resume state ({BACKUP_DIR}/ "
                         f"is removed when a run completes, unless it was trained with "
                         f"--keep-backup); pass --overwrite or a new --out")


def prepare(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> int:
    """Applies the rules above to a created, locked run directory; returns the epochs
    already completed there. Writes nothing but what --overwrite removes: the run's
    settings are recorded once its data has loaded (`run_layout.write_run_config`)."""
    run_dir = config.out
    refuse_conflicts(config, resume, overwrite)
    if overwrite:
        removed = [name for name in RUN_FILES if os.path.lexists(os.path.join(run_dir, name))]
        for name in removed:
            path = os.path.join(run_dir, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        if removed:
            print(f"--overwrite: removed the previous run's {', '.join(removed)} from {run_dir}")
    return completed_epochs(run_dir)


def check_same_settings(config: TrainConfig, before_data: bool = False) -> None:
    """Refuses to continue a run with other settings, naming each with its stored and new
    value. `config` is the record completed by the loaded data (`TrainConfig.for_data`),
    as the stored one is; or, with `before_data`, the record from the flags alone,
    checked on every setting but `MODEL_FIELDS_FROM_DATA` (and the latent size, prior and
    batch size, when no flag sets them: their defaults depend on the images), so that a
    wrong flag is refused before a large data set is read."""
    if not os.path.exists(os.path.join(config.out, RUN_CONFIG)):
        return
    stored, wanted = read_run_config(config.out).to_dict(), config.to_dict()
    skipped = MODEL_FIELDS_FROM_DATA if before_data else ()
    if before_data:  # and what no flag set: its default depends on the pixels
        skipped += tuple(key for key, value in wanted["model"].items() if value is None)
    differing = [f"{key} {stored.get(key)!r} (now {wanted.get(key)!r})"
                 for key in MUST_MATCH if key != "model" and stored.get(key) != wanted.get(key)
                 and not (before_data and key in DEFAULTS_FROM_DATA and wanted[key] is None)]
    differing += [f"{key} {value!r} (now {wanted['model'].get(key)!r})"
                  for key, value in stored["model"].items()
                  if key not in skipped and value != wanted["model"].get(key)]
    if differing:
        raise UsageError(f"{config.out} was trained with other settings: "
                         f"{', '.join(differing)}; use the same flags to resume, or "
                         f"--overwrite, or a new --out")


def completed_epochs(run_dir: str) -> int:
    """Epochs saved by BackupAndRestore (0 when there is no backup)."""
    path = os.path.join(run_dir, BACKUP_DIR, "training_metadata.json")
    try:
        with open(path) as f:
            return int(json.load(f)["epoch"])
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError):
        raise RunFailure(f"{path} is damaged; remove {os.path.dirname(path)} to restart the "
                         f"run from scratch") from None


def read_history(run_dir: str) -> list[dict[str, float]]:
    """Per-epoch metrics from the CSV, one row per epoch in order; `epoch` counts from 1,
    as the console and summary.json do."""
    try:
        with open(os.path.join(run_dir, METRICS_CSV)) as f:
            rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except FileNotFoundError:
        return []
    except ValueError:
        raise RunFailure(f"{run_dir}/{METRICS_CSV} is damaged; remove it or pass "
                         f"--overwrite") from None
    by_epoch = {int(row["epoch"]): row for row in rows}
    return [by_epoch[e] for e in sorted(by_epoch)]


def trim_history(run_dir: str, epochs: int) -> None:
    """Keeps only the CSV rows of epochs 1 … `epochs` (those the backup holds)."""
    path = os.path.join(run_dir, METRICS_CSV)
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, [r for r in reader if int(r["epoch"]) <= epochs]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def best_row(history: list[dict[str, float]]) -> dict[str, float] | None:
    """The epoch with the lowest validation loss: the one best.keras holds (None before
    any epoch finished)."""
    return min(history, key=lambda row: row["val_loss"], default=None)


def epoch_number(row: dict[str, float]) -> int:
    """A history row's epoch, counted from 1."""
    return int(row["epoch"])


def best_validation(history: list[dict[str, float]]) -> float:
    best = best_row(history)
    return math.inf if best is None else best["val_loss"]
