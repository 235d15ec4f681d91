"""`python -m keras_vae.train`: train a VAE, evaluate it, draw it, export it.

The procedure reads top to bottom: parse flags into a `TrainConfig`, load the data, build
and fit the model with Keras callbacks (progress bar, best checkpoint, crash backup, CSV,
TensorBoard), reload the best checkpoint, evaluate on the test split, write pictures,
export decoder and encoder (`export/`), and write `summary.json` describing all of it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_vae import distribute, resume
from keras_vae.atomic import write_json
from keras_vae.callbacks import (
    BestCheckpoint,
    EpochSeconds,
    KLWarmup,
    NonFiniteLoss,
    PeakMemory,
    StopOnNonFinite,
    TrainingEpoch,
)
from keras_vae.cli import (
    ArgumentParser,
    RunFailure,
    UsageError,
    int_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    run_command,
)
from keras_vae.config import (
    ARCHITECTURES,
    LR_SCHEDULES,
    OBJECTIVES,
    PRIORS,
    ModelConfig,
    TrainConfig,
)
from keras_vae.data import (
    DATASETS,
    epoch_variable,
    images_of,
    load_splits,
    make_dataset,
    spec_of,
)
from keras_vae.memory import peak_rss_mb
from keras_vae.model import VAE
from keras_vae.pictures import draw_run
from keras_vae.run_layout import (
    BACKUP_DIR,
    CHECKPOINT,
    EXPORT_DIR,
    METRICS_CSV,
    SUMMARY,
    TENSORBOARD_DIR,
)
from keras_vae.run_lock import RunLock


def parse_args(argv: Sequence[str]) -> tuple[TrainConfig, int, bool, bool]:
    """Flags → (TrainConfig, Keras verbosity, --resume, --overwrite)."""
    defaults, model_defaults = TrainConfig(), ModelConfig()
    parser = ArgumentParser(
        prog="python -m keras_vae.train",
        description="Train a variational autoencoder, evaluate it on the test split, "
                    "write sample pictures and export the model (SavedModel, ONNX, LiteRT).")
    parser.add_argument("--dataset", default=defaults.dataset, choices=sorted(DATASETS),
                        help="TFDS dataset (default: %(default)s)")
    parser.add_argument("--epochs", type=positive_int, default=defaults.epochs,
                        help="training epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size,
                        help="examples per step (default: %(default)s)")
    parser.add_argument("--latent-dim", type=positive_int, default=model_defaults.latent_dim,
                        help="size of z; 2 gives plottable latent maps (default: %(default)s)")
    parser.add_argument("--hidden-dims", type=int_list, default=model_defaults.hidden_dims,
                        help="MLP hidden widths, e.g. 400 or 512,256 (default: 400)")
    parser.add_argument("--arch", choices=ARCHITECTURES, default=model_defaults.arch,
                        help="mlp: dense ReLU layers; gated: gated dense layers "
                             "(h·sigmoid(gate)); conv: strided convolutions around them "
                             "(default: %(default)s)")
    parser.add_argument("--beta", type=non_negative_float, default=model_defaults.beta,
                        help="KL weight in the training objective (default: %(default)s)")
    parser.add_argument("--kl-warmup-epochs", type=non_negative_int,
                        default=defaults.kl_warmup_epochs,
                        help="raise the KL weight linearly from 0 to --beta over this many "
                             "epochs (default: %(default)s, no warm-up)")
    parser.add_argument("--objective", choices=OBJECTIVES, default=model_defaults.objective,
                        help="elbo, or iwae: the importance-weighted bound of Burda et al. "
                             "(default: %(default)s)")
    parser.add_argument("--iwae-k", type=positive_int, default=None,
                        help="samples per image of --objective iwae (default: 5)")
    parser.add_argument("--prior", choices=PRIORS, default=model_defaults.prior,
                        help="normal: N(0, I); vamp: the VampPrior, a mixture over learned "
                             "pseudo-inputs (default: %(default)s)")
    parser.add_argument("--pseudo-inputs", type=positive_int, default=None,
                        help="components of --prior vamp (default: 500)")
    parser.add_argument("--learning-rate", type=positive_float, default=defaults.learning_rate,
                        help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=defaults.lr_schedule,
                        help="constant, or cosine: decay to 0 over --epochs "
                             "(default: %(default)s)")
    parser.add_argument("--early-stopping-patience", type=positive_int, default=None,
                        help="stop when the validation negative ELBO has not improved for "
                             "this many epochs (after the warm-up); the best weights are "
                             "kept (default: train all --epochs)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed of weights, shuffling and sampling (default: %(default)s)")
    parser.add_argument("--dynamic-binarization", action="store_true",
                        help="grayscale datasets: train on a fresh Bernoulli draw of the "
                             "pixels each epoch (IWAE paper); evaluate on one fixed draw")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data directory (default: $TFDS_DATA_DIR, else TFDS's)")
    parser.add_argument("--out", default=None,
                        help="run directory (default: a new folder under runs/)")
    parser.add_argument("--max-examples", type=positive_int, default=None,
                        help="use only the first N examples of each split (quick runs)")
    parser.add_argument("--no-jit", action="store_true",
                        help="do not compile the training step with XLA (--arch conv "
                             "never does: XLA's CPU convolutions trained 4.5× slower here)")
    parser.add_argument("--steps-per-execution", type=positive_int,
                        default=defaults.steps_per_execution,
                        help="training steps per compiled call (default: %(default)s)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help="Keras verbosity: 1 progress bar, 2 one line per epoch "
                             "(default: 1 on a terminal, else 2)")
    parser.add_argument("--strategy", choices=distribute.STRATEGIES, default=defaults.strategy,
                        help="tf.distribute strategy; multi_worker reads TF_CONFIG "
                             "(default: %(default)s)")
    parser.add_argument("--resume", action="store_true",
                        help="a finished run in --out: train it on to --epochs, then "
                             "evaluate and export again (an interrupted run resumes anyway)")
    parser.add_argument("--overwrite", action="store_true",
                        help="a finished run in --out: remove its files and start afresh")
    parser.add_argument("--debug", action="store_true",
                        help="show Python tracebacks for errors")
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other; pass one")
    if args.iwae_k is not None and args.objective != "iwae":
        raise UsageError("--iwae-k applies to --objective iwae; add that flag or drop it")
    iwae_k = (args.iwae_k or 5) if args.objective == "iwae" else 1
    if args.pseudo_inputs is not None and args.prior != "vamp":
        raise UsageError("--pseudo-inputs applies to --prior vamp; add that flag or drop it")
    pseudo_inputs = (args.pseudo_inputs or 500) if args.prior == "vamp" else 0
    if args.dynamic_binarization and spec_of(args.dataset).is_binary:
        raise UsageError(f"--dynamic-binarization needs a grayscale dataset; "
                         f"{args.dataset} is already binary (use mnist or fashion_mnist)")
    config = TrainConfig(
        model=ModelConfig(latent_dim=args.latent_dim, hidden_dims=args.hidden_dims,
                          beta=args.beta, seed=args.seed, arch=args.arch,
                          objective=args.objective, iwae_k=iwae_k, prior=args.prior,
                          pseudo_inputs=pseudo_inputs),
        dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed,
        dynamic_binarization=args.dynamic_binarization, data_dir=args.data_dir,
        out=args.out or default_run_dir(args.dataset),
        jit_compile=not args.no_jit and args.arch != "conv",
        steps_per_execution=args.steps_per_execution, max_examples=args.max_examples,
        strategy=args.strategy, kl_warmup_epochs=args.kl_warmup_epochs,
        lr_schedule=args.lr_schedule, early_stopping_patience=args.early_stopping_patience)
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    return config, verbose, args.resume, args.overwrite


def default_run_dir(dataset: str) -> str:
    return os.path.join("runs", f"{time.strftime('%Y%m%d-%H%M%S')}-{dataset}")


def datasets_for(config: TrainConfig, splits: dict, epoch: tf.Variable | None = None
                 ) -> tuple:
    """(train, validation, test) tf.data pipelines as this run trains and evaluates on them.

    Training reshuffles (and, with dynamic binarization, redraws pixels) every epoch, keyed
    by `epoch` (see `data.epoch_variable`, kept current by the `TrainingEpoch` callback);
    validation and test are fixed, so every evaluation of a run sees the same examples.
    """
    binarize = config.seed if config.dynamic_binarization else None
    return (make_dataset(splits["train"], config.batch_size, shuffle_seed=config.seed,
                         binarize_seed=binarize, epoch=epoch),
            make_dataset(splits["validation"], config.batch_size, binarize_seed=binarize),
            make_dataset(splits["test"], config.batch_size, binarize_seed=binarize))


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    """Adam's learning rate: a constant, or a cosine decay to 0 over all the run's steps
    (the optimizer's step count is restored on resume, so the schedule continues)."""
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * steps_per_epoch)
    return config.learning_rate


def build_model(config: TrainConfig, steps_per_epoch: int = 1) -> VAE:
    vae = VAE(config.model)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate(config, steps_per_epoch)),
                jit_compile=config.jit_compile,
                steps_per_execution=config.steps_per_execution)
    return vae


def callbacks_for(config: TrainConfig, best_so_far: float, epoch: tf.Variable
                  ) -> list[keras.callbacks.Callback]:
    # Order matters: StopOnNonFinite raises before anything saves broken weights;
    # EpochSeconds, PeakMemory and KLWarmup write into the logs before CSVLogger reads them.
    run_dir = config.out
    early_stopping = [] if config.early_stopping_patience is None else [
        keras.callbacks.EarlyStopping(
            "val_loss", patience=config.early_stopping_patience,
            start_from_epoch=config.kl_warmup_epochs, restore_best_weights=True)]
    return [
        TrainingEpoch(epoch),
        KLWarmup(config.kl_warmup_epochs, config.model.beta),
        StopOnNonFinite(),
        EpochSeconds(),
        PeakMemory(),
        BestCheckpoint(os.path.join(run_dir, CHECKPOINT), "val_loss", best_so_far),
        *early_stopping,
        keras.callbacks.CSVLogger(os.path.join(run_dir, METRICS_CSV), append=True),
        keras.callbacks.TensorBoard(log_dir=os.path.join(run_dir, TENSORBOARD_DIR)),
        # Kept after training (not deleted) so that --resume can train a finished run on;
        # double_checkpoint keeps the previous epoch's state if the newest is damaged.
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, BACKUP_DIR),
                                         delete_checkpoint=False, double_checkpoint=True),
    ]


def train(config: TrainConfig, verbose: int = 2, resume_run: bool = False,
          overwrite: bool = False) -> dict | None:
    """Runs the whole procedure and returns the summary it wrote to `summary.json`
    (None on a non-chief worker, which writes nothing that outlives it)."""
    strategy = distribute.make_strategy(config.strategy)  # first: workers connect here
    replicas = strategy.num_replicas_in_sync
    per_replica = distribute.per_replica_batch(config.batch_size, replicas)
    if replicas > 1 and (config.steps_per_execution > 1 or config.jit_compile):
        # Under MirroredStrategy, Keras 3.15's multi-step loop and its XLA-compiled step
        # both fail ("You must feed a value for placeholder tensor ..."); one plain step
        # per call works.
        print(f"{replicas} replicas: training without XLA, one step per call")
        config = dataclasses.replace(config, steps_per_execution=1, jit_compile=False)
    print(f"strategy {distribute.resolve(config.strategy)}: {replicas} replica(s), global "
          f"batch {config.batch_size}, per-replica batch {per_replica}")
    chief = distribute.is_chief()
    if not chief:
        config = dataclasses.replace(config, out=tempfile.mkdtemp(prefix="keras-vae-worker-"))
    try:
        resume.create(config.out)
        with RunLock(config.out):
            already = resume.prepare(config, resume=resume_run, overwrite=overwrite)
            summary = _train_locked(config, verbose, already, strategy, chief)
    finally:
        if not chief:
            shutil.rmtree(config.out, ignore_errors=True)
    return summary


def _train_locked(config: TrainConfig, verbose: int, already: int,
                  strategy: tf.distribute.Strategy, chief: bool) -> dict | None:
    from export.pipeline import export_model, summary_entries  # export/ needs keras_vae

    run_dir = config.out
    resume.trim_history(run_dir, already)  # epochs after the backup are trained again
    if already:
        print(f"resuming {run_dir} after epoch {already} (from {BACKUP_DIR}/)")
    # First of all: TF folds the global seed into every op seed when the op is built, so
    # datasets built before this call would shuffle differently from those built after.
    keras.utils.set_random_seed(config.seed)
    splits = load_splits(config.dataset, config.data_dir, config.max_examples)
    epoch = epoch_variable()
    train_data, val_data, test_data = datasets_for(config, splits, epoch)
    print(f"{config.dataset}: train {len(splits['train'])}, validation "
          f"{len(splits['validation'])}, test {len(splits['test'])} examples; run → {run_dir}")

    with strategy.scope():
        vae = build_model(config, steps_per_epoch=len(train_data))
    best_so_far = resume.best_validation(resume.read_history(run_dir))
    try:
        # shuffle=False: the training dataset already reshuffles itself, seeded, each epoch.
        vae.fit(train_data, validation_data=val_data, epochs=config.epochs, shuffle=False,
                callbacks=callbacks_for(config, best_so_far, epoch), verbose=verbose)
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

    if not chief:
        return None  # the chief evaluates, draws and exports
    history = resume.read_history(run_dir)
    best = min(history, key=lambda row: row["val_loss"])
    vae = keras.models.load_model(os.path.join(run_dir, CHECKPOINT))
    test = vae.evaluate(test_data, return_dict=True, verbose=0)
    test_images = images_of(test_data)
    artifacts = {"checkpoint": CHECKPOINT,
                 **draw_run(vae, test_images, splits["test"].labels, history, run_dir,
                            config.seed)}
    export_dir = os.path.join(run_dir, EXPORT_DIR)
    try:
        exported = export_model(vae, export_dir, config.to_dict())
    except RunFailure as error:  # the trained run is still complete: record it, then fail
        export_failure = error
        export_section = {"error": str(error)}
    else:
        export_failure = None
        export_artifacts, export_section = summary_entries(exported, run_dir, export_dir)
        artifacts.update(export_artifacts)

    epoch_seconds = [row["epoch_seconds"] for row in history]
    summary = {
        "dataset": config.dataset,
        "config": config.to_dict(),
        "strategy": distribute.resolve(config.strategy),
        "replicas": strategy.num_replicas_in_sync,
        "per_replica_batch": config.batch_size // strategy.num_replicas_in_sync,
        "epochs_completed": len(history),
        "epoch_seconds": epoch_seconds,
        "train_examples_per_second": len(splits["train"]) / float(
            np.median(epoch_seconds[1:] or epoch_seconds)),
        "training_peak_rss_mb": max(row["peak_rss_mb"] for row in history),
        "best_epoch": int(best["epoch"]) + 1,
        "val_neg_elbo": best["val_loss"],
        "test_neg_elbo": test["loss"],
        "test_reconstruction": test["reconstruction"],
        "test_kl": test["kl"],
        "export": export_section,
        "artifacts": artifacts,
        "command_peak_rss_mb": peak_rss_mb(),
    }
    write_json(os.path.join(run_dir, SUMMARY), summary)
    report(summary, run_dir)
    if export_failure:
        raise RunFailure(f"{export_failure}. Training finished and is saved ({SUMMARY}, "
                         f"{CHECKPOINT}); retry the export with: python -m export {run_dir}")
    return summary


def report(summary: dict, run_dir: str) -> None:
    print(f"\ntest negative ELBO {summary['test_neg_elbo']:.2f} nats "
          f"(reconstruction {summary['test_reconstruction']:.2f} + KL "
          f"{summary['test_kl']:.2f}); best validation {summary['val_neg_elbo']:.2f} at "
          f"epoch {summary['best_epoch']}")
    for name, path in {**summary["artifacts"], "summary": SUMMARY,
                       "metrics": METRICS_CSV, "tensorboard": TENSORBOARD_DIR}.items():
        print(f"  {name:<20} {os.path.join(run_dir, path)}")


class Interrupted(RunFailure):
    """Ctrl-C: training stopped; the last completed epoch is saved for resuming."""

    exit_code = 130


def main(argv: Sequence[str]) -> None:
    config, verbose, resume_run, overwrite = parse_args(argv)
    train(config, verbose, resume_run, overwrite)


if __name__ == "__main__":
    sys.exit(run_command(main, "keras_vae.train"))
