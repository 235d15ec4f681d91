"""Keras callbacks of a training run that Keras does not provide as needed.

- `EpochSeconds`, `PeakMemory`: per-epoch wall time (whole, and training alone) and peak
  memory, added to the logs so that CSVLogger records them (and a resumed run keeps them).
- `BestCheckpoint`: ModelCheckpoint(save_best_only) written under a temporary name and
  renamed, so a crash mid-save never leaves a truncated best.keras, seeded with the best
  value so far when a run resumes, and without the optimizer's state (two thirds of an
  Adam checkpoint), which only resuming needs and the backup holds.
- `KLWarmup`: raises the KL weight β linearly, step by step, over the first epochs.
- `LearningRateLog`: the learning rate each epoch started with, for the CSV.
- `TrainingEpoch`: tells the training pipeline which epoch it is feeding.
- `StopOnNonFinite`: stops at the first non-finite loss, before any later callback can
  save the broken weights, and says where it happened.
- `MetricsCsv`: Keras's CSVLogger with epochs counted from 1, as the console counts them.
"""

from __future__ import annotations

import math
import time

import keras
import tensorflow as tf

from keras_vae.run.atomic import atomic_path
from keras_vae.run.memory import peak_rss_mb


class EpochSeconds(keras.callbacks.Callback):
    """Records each epoch's wall time (`self.seconds`, logged as `epoch_seconds`) and the
    part of it spent on training steps (`self.train_seconds`, logged as `train_seconds`):
    up to the validation pass that `fit` runs at the epoch's end, whose `on_test_begin`
    reaches the same callbacks. Training speed is examples / train_seconds."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self.train_seconds: list[float] = []
        self._start = self._train_end = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._train_end = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self._start is not None and self._train_end is None:  # fit's validation
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        end = time.perf_counter()
        self.seconds.append(end - self._start)
        self.train_seconds.append((self._train_end or end) - self._start)
        self._start = None
        if logs is not None:
            logs["epoch_seconds"] = self.seconds[-1]
            logs["train_seconds"] = self.train_seconds[-1]


class PeakMemory(keras.callbacks.Callback):
    """Adds the process's peak resident memory so far (MB) to each epoch's logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["peak_rss_mb"] = peak_rss_mb()


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the whole model to `path` whenever `monitor` reaches a new minimum.

    Args:
        path: a `.keras` file.
        monitor: a logged metric to minimize, such as "val_loss".
        best: the best value reached before this run (a resumed run), or inf.
    """

    def __init__(self, path: str, monitor: str = "val_loss", best: float = math.inf):
        super().__init__()
        self.path, self.monitor, self.best = path, monitor, best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best = float(value)
            save_checkpoint(self.model, self.path)


def save_checkpoint(model: keras.Model, path: str) -> None:
    """The whole model to the `.keras` file `path`, written then renamed, without its
    optimizer's state (a checkpoint for evaluating, drawing and exporting; resuming reads
    the backup)."""
    optimizer, model.optimizer = model.optimizer, None
    try:
        with atomic_path(path) as tmp:
            model.save(tmp)
    finally:
        model.optimizer = optimizer


class NonFiniteLoss(Exception):
    """Training produced a NaN or infinite loss, or a hierarchy's guards skipped every
    update of an epoch."""

    def __init__(self, epoch: int, step: int, value: float, message: str | None = None):
        super().__init__(message or f"loss became {value} in epoch {epoch + 1} by step "
                                    f"{step + 1}")
        self.epoch, self.step, self.value = epoch, step, value


MOSTLY_SKIPPED_AFTER = 100
"""Updates of an epoch after which `StopOnNonFinite` stops a run that skipped most of
them. A diverged hierarchy skips nearly everything and never recovers (the resumed
Fashion-MNIST run of `keras_vae.run.schedules`: 780 of an epoch's 782 updates, and the
epoch-end rule, every update skipped, would have let it train on for 15 epochs of
nothing); a healthy run skips a few in a thousand, if any."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Raises `NonFiniteLoss` at the first non-finite training loss, when more than half
    of an epoch's first `MOSTLY_SKIPPED_AFTER` or more updates were skipped by a
    hierarchy's guards, and after an epoch whose every update they skipped (nothing
    would change any more).

    Raising (rather than TerminateOnNaN's stop_training flag) ends `fit` at once, so no
    epoch-end callback writes the broken weights over the last good checkpoint or backup.
    With `steps_per_execution` > 1 the step is the last of the compiled group that went bad.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        value = (logs or {}).get("loss")
        if value is not None and not math.isfinite(float(value)):
            raise NonFiniteLoss(self._epoch, batch, float(value))
        skipped, steps = (logs or {}).get("skipped_updates"), batch + 1
        if (skipped is not None and steps >= MOSTLY_SKIPPED_AFTER
                and 2 * float(skipped) > steps):
            raise NonFiniteLoss(self._epoch, batch, float("nan"),
                                f"{int(skipped)} of the first {steps} updates of epoch "
                                f"{self._epoch + 1} were skipped (their gradients were not "
                                f"finite or too large): training diverged")

    def on_epoch_end(self, epoch, logs=None):
        skipped = (logs or {}).get("skipped_updates")
        if skipped is not None and skipped >= self.params["steps"]:
            raise NonFiniteLoss(epoch, self.params["steps"] - 1, float("nan"),
                                f"every update of epoch {epoch + 1} was skipped (its "
                                f"gradients were not finite or too large)")


class TrainingEpoch(keras.callbacks.Callback):
    """Keeps the training pipeline's epoch variable (see `data.make_dataset`) at Keras's
    epoch, so each epoch's order and pixel draws are keyed by the epoch number itself.

    Keras opens the iterator of epoch e + 1 as soon as epoch e's last step has run, before
    `on_epoch_end`, so the variable advances at that last step's `on_train_batch_end`.
    `on_epoch_begin` sets it for the first epoch of a `fit` (a resumed run starts at its
    `initial_epoch`).

    Args:
        epoch: the variable `make_dataset(..., epoch=...)` reads.
    """

    def __init__(self, epoch: tf.Variable):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch
        self.epoch.assign(epoch)

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 >= self.params["steps"]:
            self.epoch.assign(self._current + 1)


class KLWarmup(keras.callbacks.Callback):
    """KL warm-up: the KL weight rises linearly from 0 to β over the first `epochs`,
    step by step.

    Step s of S in epoch e (both from 0) trains with β·min(1, (e + s/S) / epochs); Keras
    calls back once per `steps_per_execution` steps, so the weight rises in steps that
    small. It reaches β where epoch `epochs` begins. The weight rises within the first
    epoch rather than at its end because a whole epoch at 0 is an autoencoder's: on
    Fashion-MNIST a convolutional hierarchy (`--arch conv --latent-dim 40,40
    --kl-warmup-epochs 10`) ended it with a validation KL of 64,553 nats, and at 0.1 the
    next epoch's every gradient was too large to apply, so training stopped
    (2026-11-30). It assigns the `KLTerm` layer's β variable, so the compiled training
    step is not rebuilt, and depends only on the epoch and step numbers, so a resumed run
    continues it.

    Args:
        epochs: length of the warm-up; 0 disables it.
        beta: the final KL weight.
    """

    def __init__(self, epochs: int, beta: float):
        super().__init__()
        self.epochs, self.beta = epochs, beta
        self._epoch = 0

    def weight(self, progress: float) -> float:
        """β at `progress` epochs into training (a fraction within an epoch)."""
        return self.beta * min(1.0, progress / self.epochs) if self.epochs else self.beta

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        steps = self.params.get("steps")  # None for data of unknown length: by epoch
        self.model.kl_term.beta.assign(self.weight(self._epoch + (batch / steps if steps
                                                                  else 0.0)))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["kl_weight"] = self.weight(epoch + 1)  # reached at the epoch's end


class LearningRateLog(keras.callbacks.Callback):
    """Adds `learning_rate`, the optimizer's rate at the epoch's first step, to the logs:
    a schedule's progress (and its continuation after a resume) is then in metrics.csv."""

    def on_epoch_begin(self, epoch, logs=None):
        self._rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self._rate


class MetricsCsv(keras.callbacks.CSVLogger):
    """`keras.callbacks.CSVLogger` whose `epoch` column counts from 1, as Keras's console
    and summary.json do (Keras passes callbacks 0-based epochs)."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)


class ExpectedTime(keras.callbacks.Callback):
    """One line after the first epoch this process trains: what it took, and about how
    long the epochs left will take at that pace — for runs whose length the data set
    (`keras_vae.config.default_epochs`) or a slow network makes long."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self._started: float | None = None
        self._said = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._started is None:
            self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self._said or self._started is None:
            return
        self._said = True
        took, left = time.perf_counter() - self._started, self.epochs - epoch - 1
        if left:
            print(f"epoch {epoch + 1} of {self.epochs} took {duration_text(took)}; the "
                  f"{left} left take about {duration_text(took * left)} at that pace",
                  flush=True)


def duration_text(seconds: float) -> str:
    """"42 s", "7 min", "2.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
