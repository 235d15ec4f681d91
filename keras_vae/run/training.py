"""One training run from a `TrainConfig`: the procedure behind `python -m keras_vae.train`.

It reads top to bottom: take the run directory (lock, resume rules), load the data, record
the settings, build and fit the model with Keras callbacks (progress, best checkpoint,
crash backup, CSV, TensorBoard), reload the best checkpoint, evaluate it on the test
split, draw it, and write `summary.json` describing all of it. This is a library module:
the command parses flags, calls `train`, then exports the run (`export/`); the benchmark
calls `build_model`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_vae.config import TrainConfig, bits_per_dim, updates_per_epoch
from keras_vae.data.pipeline import datasets_for, epoch_variable, images_of, splits_for
from keras_vae.measure.pictures import draw_run
from keras_vae.model.precision import dtype_policy
from keras_vae.model.vae import VAE
from keras_vae.run import distribute, resume
from keras_vae.run.atomic import write_json
from keras_vae.run.callbacks import (
    BestCheckpoint,
    EpochSeconds,
    ExpectedTime,
    KLWarmup,
    LearningRateLog,
    MetricsCsv,
    NonFiniteLoss,
    PeakMemory,
    StopOnNonFinite,
    TrainingEpoch,
    save_checkpoint,
)
from keras_vae.run.cli import RunFailure, UsageError
from keras_vae.run.interrupt import CtrlCAtBatchEnd
from keras_vae.run.layout import (
    BACKUP_DIR,
    CHECKPOINT,
    METRICS_CSV,
    SUMMARY,
    TENSORBOARD_DIR,
    directory_bytes,
    load_checkpoint,
    read_run_config,
    write_run_config,
)
from keras_vae.run.lock import RunLock
from keras_vae.run.memory import peak_rss_mb
from keras_vae.run.prior_fit import fit_class_prior, start_pseudo_inputs, validation_loss
from keras_vae.run.schedules import learning_rate, ramp_line, resumed_from

OPTIMIZER_STATE_SKIPPED = "Skipping variable loading for optimizer"
"""The start of Keras's warning when a saved optimizer state has another variable count."""


class OptimizerStateMismatch(UsageError):
    """A resume whose optimizer cannot take the backup's state (see `_fit`)."""


class Interrupted(RunFailure):
    """Ctrl-C: training stopped; the last completed epoch is saved for resuming."""

    exit_code = 130


def build_model(config: TrainConfig, steps_per_epoch: int = 1,
                resumed_from: tuple[int, float] | None = None) -> VAE:
    """The run's VAE, compiled with its optimizer and the run's XLA and steps-per-call
    settings. `resumed_from`: see `schedules.learning_rate`."""
    with dtype_policy(config.precision):
        vae = VAE(config.model)
    vae.compile(optimizer=optimizer_for(config, steps_per_epoch, resumed_from),
                jit_compile=config.jit_compile,
                steps_per_execution=config.steps_per_execution)
    return vae


def optimizer_for(config: TrainConfig, steps_per_epoch: int,
                  resumed_from: tuple[int, float] | None = None):
    """Adam; with `weight_decay`, AdamW, whose decoupled decay shrinks each kernel by
    learning rate × weight decay per step. Only kernels: a decayed bias or prior
    parameter (the VampPrior's pseudo-inputs, a class prior's means) would be pulled
    toward a value that means nothing, where a smaller kernel is a smoother network."""
    rate = learning_rate(config, steps_per_epoch, resumed_from)
    if not config.weight_decay:
        return keras.optimizers.Adam(rate)
    optimizer = keras.optimizers.AdamW(rate, weight_decay=config.weight_decay)
    # All but kernels; TensorFlow names a variable "kernel" or ".../kernel:0".
    optimizer.exclude_from_weight_decay(var_names=[r"^(?!(.*/)?kernel(:\d+)?$)"])
    return optimizer


def callbacks_for(config: TrainConfig, best_so_far: float, epoch: tf.Variable
                  ) -> list[keras.callbacks.Callback]:
    # Order matters: StopOnNonFinite raises before anything saves broken weights;
    # EpochSeconds, PeakMemory, KLWarmup and LearningRateLog write into the logs before
    # CSVLogger reads them.
    run_dir = config.out
    early_stopping = [] if config.early_stopping_patience is None else [
        keras.callbacks.EarlyStopping(
            "val_loss", patience=config.early_stopping_patience,
            start_from_epoch=config.kl_warmup_epochs, restore_best_weights=True)]
    return [
        TrainingEpoch(epoch),
        KLWarmup(config.kl_warmup_epochs, config.model.beta),
        LearningRateLog(),
        StopOnNonFinite(),
        EpochSeconds(),
        ExpectedTime(config.epochs),
        PeakMemory(),
        BestCheckpoint(os.path.join(run_dir, CHECKPOINT), "val_loss", best_so_far),
        *early_stopping,
        MetricsCsv(os.path.join(run_dir, METRICS_CSV), append=True),
        keras.callbacks.TensorBoard(log_dir=os.path.join(run_dir, TENSORBOARD_DIR)),
        # The state to resume from after a crash, removed when training completes unless
        # --keep-backup keeps it for --resume; double_checkpoint keeps the previous
        # epoch's state if the newest is damaged.
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, BACKUP_DIR),
                                         delete_checkpoint=not config.keep_backup,
                                         double_checkpoint=True),
    ]


def train(config: TrainConfig, verbose: int = 2, resume_run: bool = False,
          overwrite: bool = False) -> dict | None:
    """Runs the whole procedure and returns the summary it wrote to `summary.json`
    (None on a non-chief worker, which writes nothing that outlives it). The summary's
    `export` section says how to export the run; exporting it fills that section in.

    A run that fails before its data has loaded leaves nothing behind: a run directory
    created for it is removed again.
    """
    strategy = distribute.make_strategy(config.strategy)  # first: workers connect here
    config = _fit_to_strategy(config, strategy)
    chief, run_dir = distribute.is_chief(), config.out
    if not chief:
        config = dataclasses.replace(config, out=tempfile.mkdtemp(prefix="keras-vae-worker-"))
        if not overwrite:
            resume.copy_resume_state(run_dir, config.out)
    created = resume.create(config.out)
    try:
        with RunLock(config.out):
            epochs_done = resume.prepare(config, resume=resume_run, overwrite=overwrite)
            resume.refuse_different_starts(distribute.value_on_each_worker(strategy, epochs_done),
                                           run_dir)
            previous = read_run_config(config.out) if epochs_done else None
            splits, config = _load_data(config)
            # after the data: their errors come first
            _describe_strategy(config, strategy, len(splits["train"]))
            resume.check_same_settings(config)
            write_run_config(config)
            try:
                return _train_locked(config, splits, verbose, (epochs_done, previous),
                                     strategy, chief)
            except OptimizerStateMismatch:  # the refused settings trained nothing
                write_run_config(dataclasses.replace(previous, out=config.out))
                raise
    finally:
        if not chief:
            shutil.rmtree(config.out, ignore_errors=True)
        elif created:
            resume.remove_if_empty(config.out)


def _fit_to_strategy(config: TrainConfig, strategy: tf.distribute.Strategy) -> TrainConfig:
    replicas = strategy.num_replicas_in_sync
    if config.batch_size:  # refuses an uneven split; a default one is checked after the data
        distribute.per_replica_batch(config.batch_size, replicas)
    if replicas > 1 and (config.steps_per_execution > 1 or config.jit_compile):
        # Under MirroredStrategy, Keras 3.15's multi-step loop and its XLA-compiled step
        # both fail ("You must feed a value for placeholder tensor ..."); one plain step
        # per call works.
        config = dataclasses.replace(config, steps_per_execution=1, jit_compile=False)
    return config


def _describe_strategy(config: TrainConfig, strategy: tf.distribute.Strategy,
                       train_examples: int) -> None:
    """One line on how training runs. Fewer training examples than a batch are not an
    error: tf.data makes one batch of them all, so a small folder of one's own photos
    trains with the default batch size, and this line says so."""
    replicas = strategy.num_replicas_in_sync
    plain = " (without XLA, one step per call)" if replicas > 1 else ""
    batch = (f"global batch {config.batch_size}, per-replica batch "
             f"{distribute.per_replica_batch(config.batch_size, replicas)}")
    if config.batch_size > train_examples:
        batch = (f"global batch {config.batch_size}, more than the {train_examples} "
                 f"training examples: each step trains on all of them")
    print(f"strategy {distribute.resolve(config.strategy)}: {replicas} replica(s), "
          f"{batch}{plain}")


def _load_data(config: TrainConfig) -> tuple[dict, TrainConfig]:
    """The run's splits, and the run's record completed by what the data are
    (`TrainConfig.for_data`). The global seed is set first: TF folds it into every op seed
    when the op is built, so datasets built before this call would shuffle differently
    from those built after."""
    keras.utils.set_random_seed(config.seed)
    splits = splits_for(config)
    train = splits["train"]
    config = config.for_data(train.image_shape, train.pixel_kind(), train.label_names,
                             len(train))
    height, width, channels = config.model.image_shape
    latent = config.model.latent_text
    print(f"{config.dataset}: train {len(train)}, validation {len(splits['validation'])}, "
          f"test {len(splits['test'])} images of {height}×{width}×{channels}, "
          f"{config.pixel_kind} pixels, {config.model.likelihood} likelihood, {latent}; "
          f"{config.epochs} epochs "
          f"({config.epochs * updates_per_epoch(len(train), config.batch_size):,} updates); "
          f"run → {config.out}")
    return splits, config


def _train_locked(config: TrainConfig, splits: dict, verbose: int,
                  done: tuple[int, TrainConfig | None], strategy: tf.distribute.Strategy,
                  chief: bool) -> dict | None:
    """`done`: the epochs already trained, and the settings they were trained with."""
    run_dir, (epochs_done, previous) = config.out, done
    resume.trim_history(run_dir, epochs_done)  # epochs after the backup are trained again
    if epochs_done:
        print(f"resuming {run_dir} after epoch {epochs_done} (from {BACKUP_DIR}/)")
    epoch = epoch_variable()
    train_data, val_data, test_data = datasets_for(config, splits, epoch)
    resumed = resumed_from(previous, resume.read_history(run_dir), len(train_data))
    ramp = resumed and ramp_line(config, len(train_data), resumed)
    if ramp:
        print(ramp)
    with strategy.scope():
        vae = build_model(config, len(train_data), resumed)
    if not epochs_done:  # a resumed run's backup holds them
        start_pseudo_inputs(vae, splits["train"], config.seed)
    _fit(vae, config, train_data, val_data, epoch, verbose)
    if not chief:
        return None  # the chief evaluates, draws and exports
    return _test_draw_and_summarize(config, splits, (train_data, val_data, test_data),
                                    strategy)


def _fit(vae: VAE, config: TrainConfig, train_data, val_data, epoch, verbose: int) -> None:
    """`vae.fit`, with Ctrl-C, a non-finite loss and a backup whose optimizer state does
    not fit this run's learning rate turned into one line saying what is kept and how to
    go on."""
    run_dir = config.out
    best_so_far = resume.best_validation(resume.read_history(run_dir))
    try:
        with CtrlCAtBatchEnd() as ctrl_c, warnings.catch_warnings():
            # Keras only warns when the backup's optimizer state does not fit, and trains
            # on with a fresh Adam whose step count (so its schedule) restarts at 0.
            warnings.filterwarnings("error", OPTIMIZER_STATE_SKIPPED, UserWarning)
            # shuffle=False: the training dataset already reshuffles itself, seeded,
            # each epoch.
            vae.fit(train_data, validation_data=val_data, epochs=config.epochs,
                    shuffle=False, verbose=verbose,
                    callbacks=[ctrl_c, *callbacks_for(config, best_so_far, epoch)])
    except (UserWarning, ValueError) as error:  # Keras's loader re-raises as ValueError
        if OPTIMIZER_STATE_SKIPPED not in str(error):
            raise
        raise OptimizerStateMismatch(
            f"the optimizer state in {os.path.join(run_dir, BACKUP_DIR)} was saved with "
            f"another kind of learning rate (Adam keeps a constant rate as a variable, a "
            f"schedule not): resume with the run's own --lr-schedule, and a "
            f"--learning-rate no higher than it had, or start a new --out") from None
    except KeyboardInterrupt:
        saved = resume.completed_epochs(run_dir)
        raise Interrupted(f"interrupted; {saved} completed epoch(s) are saved in "
                          f"{os.path.join(run_dir, BACKUP_DIR)}: rerun the same command to "
                          f"resume") from None
    except NonFiniteLoss as error:
        best = resume.best_validation(resume.read_history(run_dir))
        kept = (f"the last good checkpoint is {os.path.join(run_dir, CHECKPOINT)} "
                f"(validation {best:.2f})" if math.isfinite(best) else "no epoch finished")
        raise RunFailure(f"{error}; training stopped, {kept}; try a lower --learning-rate"
                         ) from None


def _test_draw_and_summarize(config: TrainConfig, splits: dict, datasets: tuple,
                             strategy) -> dict:
    """Fits a conditional model's class prior to the best checkpoint's codes, evaluates
    the checkpoint on the test split, draws it, writes summary.json."""
    run_dir = config.out
    train_data, val_data, test_data = datasets
    history = resume.read_history(run_dir)
    vae = load_checkpoint(run_dir, config)
    prior_fit = _fit_class_prior(vae, train_data, val_data, run_dir)
    test = vae.evaluate(test_data, return_dict=True, verbose=0)
    artifacts = {"checkpoint": CHECKPOINT,
                 **draw_run(vae, images_of(test_data), splits["test"].labels, history,
                            run_dir, config.seed)}
    summary = _summary(config, history, len(splits["train"]), test, strategy,
                       {"skipped": f"python -m export {run_dir}"}, artifacts)
    if prior_fit is not None:
        summary["class_prior_fit"] = prior_fit
    summary["run_dir_bytes"] = directory_bytes(run_dir)  # all but summary.json itself
    write_json(os.path.join(run_dir, SUMMARY), summary)
    return summary


def _fit_class_prior(vae: VAE, train_data, val_data, run_dir: str) -> dict | None:
    """Fits p(z | y) of a conditional model by EM to its training codes
    (`keras_vae.run.prior_fit`) and keeps the fit, saving the checkpoint again, if it lowers
    the validation loss; otherwise puts the trained tables back. → what it did."""
    if vae.class_prior is None:
        return None
    print("fitting the class prior p(z | y) to the training images' codes by EM "
          "(about a minute per 50,000 images on 2 CPU cores)", flush=True)
    trained = [weight.numpy() for weight in vae.class_prior.weights]
    before = validation_loss(vae, val_data)
    fit = fit_class_prior(vae, train_data, seed=vae.config.seed)
    after = validation_loss(vae, val_data)
    kept = after < before
    if kept:
        save_checkpoint(vae, os.path.join(run_dir, CHECKPOINT))
    else:
        for weight, value in zip(vae.class_prior.weights, trained, strict=True):
            weight.assign(value)
    print(f"  {fit['images']} images' codes, {fit['seconds']:.0f} s: mean log p(z | y) "
          f"{fit['mean_log_prior_before']:.2f} → {fit['mean_log_prior_after']:.2f} nats, "
          f"validation loss {before:.2f} → {after:.2f}, {'kept' if kept else 'not kept'}")
    return {**fit, "val_loss_before": before, "val_loss_after": after, "kept": kept}


def _summary(config: TrainConfig, history: list[dict], train_examples: int, test: dict,
             strategy, export_section: dict, artifacts: dict) -> dict:
    best = resume.best_row(history)
    epoch_seconds = [row["epoch_seconds"] for row in history]
    train_seconds = [row["train_seconds"] for row in history]
    return {
        "dataset": config.dataset,
        "config": config.to_dict(),
        "strategy": distribute.resolve(config.strategy),
        "replicas": strategy.num_replicas_in_sync,
        "per_replica_batch": config.batch_size // strategy.num_replicas_in_sync,
        "epochs_completed": len(history),
        "epoch_seconds": epoch_seconds,
        "train_seconds": train_seconds,
        "train_examples_per_second": train_examples / float(
            np.median(train_seconds[1:] or train_seconds)),
        "training_peak_rss_mb": max(row["peak_rss_mb"] for row in history),
        "best_epoch": resume.epoch_number(best),
        "image_shape": list(config.model.image_shape),
        "likelihood": config.model.likelihood,
        "losses_bound": config.model.losses_bound,
        "measures_likelihood": config.measures_likelihood,
        "val_neg_elbo": best["val_loss"],
        "test_neg_elbo": test["loss"],
        "test_bits_per_dim": (bits_per_dim(test["loss"], config.model.image_shape)
                              if config.measures_likelihood else None),
        "test_reconstruction": test["reconstruction"],
        "test_kl": test["kl"],
        **_level_entries(config, history, test),
        "export": export_section,
        "artifacts": artifacts,
        "command_peak_rss_mb": peak_rss_mb(),
    }


def _level_entries(config: TrainConfig, history: list[dict], test: dict) -> dict:
    """A hierarchy's test KL per level (level 1 nearest the image) and the updates its
    guards skipped over the whole run."""
    if not config.model.hierarchical:
        return {}
    return {"test_kl_per_level": [test[f"kl_level_{level}"]
                                  for level in range(1, len(config.model.levels) + 1)],
            "skipped_updates": int(sum(row.get("skipped_updates", 0) for row in history))}


def report(summary: dict, run_dir: str) -> None:
    """The run's closing lines: its test losses and where each file is."""
    bits = summary.get("test_bits_per_dim")
    kind = (f"{bits:.4f} bits/dim" if bits is not None
            else "a Bernoulli cross-entropy against gray levels, not a likelihood")
    levels = ("" if "test_kl_per_level" not in summary else
              f" = {' + '.join(f'{kl:.2f}' for kl in summary['test_kl_per_level'])} by "
              f"level, {summary['skipped_updates']} update(s) skipped")
    print(f"\ntest negative ELBO {summary['test_neg_elbo']:.2f} nats (bound on "
          f"−{summary['losses_bound']}), {kind} "
          f"(reconstruction {summary['test_reconstruction']:.2f} + KL "
          f"{summary['test_kl']:.2f}{levels}); best validation {summary['val_neg_elbo']:.2f} "
          f"at epoch {summary['best_epoch']}")
    for name, path in {**summary["artifacts"], "summary": SUMMARY,
                       "metrics": METRICS_CSV, "tensorboard": TENSORBOARD_DIR}.items():
        print(f"  {name:<20} {os.path.join(run_dir, path)}")
