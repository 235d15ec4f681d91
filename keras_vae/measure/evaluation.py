"""What `python -m keras_vae.evaluate` measures, as a library: a run's negative ELBO,
importance-sampled NLL (resumable, `PartialNll`), active units, and its samples judged by
a classifier, written to RUN_DIR/evaluation.json with the checkpoint they measured."""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable

import numpy as np

from keras_vae.config import bits_per_dim
from keras_vae.run.atomic import atomic_path, write_json
from keras_vae.run.cli import (
    UsageError,
)
from keras_vae.run.layout import (
    CHECKPOINT,
    checkpoint_path,
    ensure_not_training,
    evaluation_files,
    load_run,
)
from keras_vae.run.memory import peak_rss_mb
from keras_vae.run.progress import progress_lines

MEAN_PIXEL_SAMPLES = 1000
"""Prior samples whose mean pixel `evaluate` sets beside the test images'."""


def checkpoint_record(run_dir: str) -> dict:
    """Which checkpoint an evaluation measured: file, sha256, and its epoch (1-based; the
    epoch of the best validation loss in metrics.csv, which is when best.keras was saved)."""
    from keras_vae.run.resume import best_row, epoch_number, read_history

    path = checkpoint_path(run_dir)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    best = best_row(read_history(run_dir))
    return {"file": CHECKPOINT, "sha256": digest.hexdigest(),
            "epoch": None if best is None else epoch_number(best)}


def progress_printer(total: int, stream=None, resumed_at: int = 0) -> Callable:
    """`show(nll_so_far)`: images done, the running NLL and the time left
    (`keras_vae.run.progress.progress_lines`)."""
    lines = progress_lines(total, stream, resumed_at)

    def show(nll_so_far) -> None:
        done = len(nll_so_far)
        lines(done, f"NLL {done:,}/{total:,} images: {float(nll_so_far.mean()):.2f} nats so far")

    return show


def evaluate(run_dir: str, k: int = 5000, seed: int = 0, max_examples: int | None = None,
             progress: bool = False, class_check: bool = True,
             sample_temperature: float = 1.0, split: str = "test") -> dict:
    """Evaluates a run on one split of its dataset (its first `max_examples` images; the
    test split unless `split` says otherwise) and writes RUN_DIR/evaluation.json (for the
    test split) or evaluation_SPLIT.json. Measured on the training split, the NLL shows how
    much of the test figure is generalization (`generalization_gap`). The checks of the
    model's samples (mean pixel, and on labelled data what a classifier trained on the
    whole training split sees in them, drawn at `sample_temperature`, if `class_check`)
    belong to the test evaluation alone: they measure the samples, not the split."""
    from keras_vae.data.pipeline import datasets_for, first_examples, images_of, splits_for
    from keras_vae.measure.nll import importance_nll, latent_statistics

    start = time.perf_counter()
    ensure_not_training(run_dir)
    measured = checkpoint_record(run_dir)
    vae, config = load_run(run_dir)
    splits = splits_for(config)
    examples = first_examples(splits[split], max_examples)
    _, _, data = datasets_for(config, {**splits, "test": examples})
    images = images_of(data)
    labels = examples.labels if config.model.conditional else None
    neg_elbo = vae.evaluate(data, return_dict=True, verbose=0)
    results_file, partial_file = evaluation_files(split)
    partial = PartialNll(os.path.join(run_dir, partial_file),
                         {"k": k, "seed": seed, "examples": len(images),
                          "sha256": measured["sha256"]})
    show = progress_printer(len(images), resumed_at=len(partial.known)) if progress else None
    nll = importance_nll(vae, images, k, seed, labels=labels, known=partial.known,
                         progress=partial.saving(show))
    result = {
        "dataset": config.dataset, "split": split, "examples": len(images), "k": k,
        "seed": seed, "checkpoint": measured, "image_shape": list(config.model.image_shape),
        "likelihood": config.model.likelihood, "losses_bound": config.model.losses_bound,
        **_estimate_entries(config, split, float(nll.mean()), _standard_error(nll)),
        **_bound_entries(split, neg_elbo, len(config.model.levels)),
        **latent_statistics(vae, images, labels=labels),
        **(_sample_checks(vae, run_dir, splits, seed, progress, class_check,
                          sample_temperature) if split == "test" else {}),
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
    }
    write_json(os.path.join(run_dir, results_file), result)
    partial.remove()
    return result


def _bound_entries(split: str, neg_elbo: dict, levels: int) -> dict:
    """The negative ELBO and its two terms (and the KL of each level of a hierarchy)."""
    return {f"{split}_neg_elbo": neg_elbo["loss"],
            f"{split}_reconstruction": neg_elbo["reconstruction"],
            f"{split}_kl": neg_elbo["kl"],
            **({f"{split}_kl_per_level": [neg_elbo[f"kl_level_{level}"]
                                          for level in range(1, levels + 1)]}
               if levels > 1 else {})}


def _sample_checks(vae, run_dir: str, splits: dict, seed: int, progress: bool,
                   class_check: bool, temperature: float) -> dict:
    """The mean pixel of prior samples beside the whole test split's, and on labelled
    data (if `class_check`) what a classifier sees in the samples (`_class_check`)."""
    real = splits["test"].as_float()
    return {**mean_pixels(vae, real, seed),
            **(_class_check(vae, run_dir, splits, real, seed, progress, temperature)
               if class_check and vae.config.label_names else {})}


class PartialNll:
    """The NLLs an evaluation has computed so far, saved after every batch of images to
    `path` (RUN_DIR/evaluation_partial.npz for the test split), so that an interrupted
    evaluation (k = 5000 under the logistic likelihood takes hours on a whole test split)
    continues where it stopped when the same command is run again. They are used only for
    the same k, seed, number of images and checkpoint (`key`). Those of another evaluation
    of the same checkpoint are not overwritten (hours of work): the evaluation is refused,
    naming the flags that finish them. An older checkpoint's, or a damaged file, are
    replaced."""

    def __init__(self, path: str, key: dict):
        self.path, self.key = path, key
        self.known = self._load()
        if len(self.known):
            print(f"resuming the NLL after {len(self.known):,} images, from {self.path}",
                  flush=True)

    def _load(self):
        import zipfile

        import numpy as np

        try:
            with np.load(self.path) as saved:
                saved_key = {name: saved[name].item() for name in self.key}
                nll = saved["nll"]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            return np.empty(0)  # none, damaged or without this key: start over
        if saved_key == self.key:
            return nll
        if saved_key.get("sha256") == self.key.get("sha256") and len(nll):
            raise UsageError(
                f"{self.path} holds {len(nll):,} NLLs of another evaluation of this "
                f"checkpoint (--k {saved_key['k']} --seed {saved_key['seed']} "
                f"--max-examples {saved_key['examples']}); run that to finish it, or "
                f"delete the file to start this one")
        return np.empty(0)  # an older checkpoint's: of no use now

    def saving(self, show: Callable | None) -> Callable:
        """The progress callback: saves the NLLs so far, then shows them."""
        import numpy as np

        def save_and_show(nll_so_far) -> None:
            with atomic_path(self.path) as tmp:
                np.savez(tmp, nll=nll_so_far, **self.key)
            if show is not None:
                show(nll_so_far)

        return save_and_show

    def remove(self) -> None:
        if os.path.exists(self.path):
            os.remove(self.path)


def _standard_error(values: np.ndarray) -> float | None:
    """The standard error of the mean; None for a single value (a small folder's one test
    image), which has none."""
    if len(values) < 2:
        return None
    return float(values.std(ddof=1) / math.sqrt(len(values)))


def _estimate_entries(config, split: str, mean: float, standard_error: float | None
                      ) -> dict:
    """The importance-sampled estimate under its true name: the NLL (also in bits per
    dimension) when the likelihood is one of the data, else a Bernoulli cross-entropy
    against gray levels, which no NLL may be compared with; `_given_label` for a
    conditional model's −log p(x|y); named after the split (`test_nll`, `train_nll`)."""
    name = estimate_name(split, config.measures_likelihood, config.model.conditional)
    entries = {name: mean, f"{name}_standard_error": standard_error}
    if config.measures_likelihood:
        entries[f"{name}_bits_per_dim"] = bits_per_dim(mean, config.model.image_shape)
    return entries


def estimate_name(split: str, likelihood: bool, conditional: bool) -> str:
    """`test_nll`, `train_nll_given_label`, `test_cross_entropy`…: the key of an
    evaluation's importance-sampled estimate."""
    return (f"{split}_{'nll' if likelihood else 'cross_entropy'}"
            f"{'_given_label' if conditional else ''}")


def mean_pixels(vae, real: np.ndarray, seed: int, samples: int = MEAN_PIXEL_SAMPLES
                 ) -> dict:
    """The mean pixel of prior samples (means of p(x|z), classes in turn) beside the
    test images'. Were the model's p(x) the data's, the two would agree; samples much
    darker or fainter show a prior that puts mass where no image's posterior is (a
    "prior hole"), which a learned prior (`--prior vamp`) narrows (docs/results.md)."""
    labels = np.arange(samples) % vae.config.classes if vae.config.conditional else None
    images = vae.sample_images(vae.sample_inputs(samples, seed, labels=labels))
    return {"sample_mean_pixel": float(np.mean(images)), "test_mean_pixel": float(np.mean(real))}


def _class_check(vae, run_dir: str, splits: dict, real: np.ndarray, seed: int,
                 progress: bool, temperature: float) -> dict:
    """What a classifier trained on the training split sees in the model's samples
    (`keras_vae.measure.classifier`): their classes, and their Fréchet distance to the whole test
    split (`real`, its float pixels) beside that of as many training images (the distance
    real data keep); and its accuracy per class on the test images and on their
    reconstructions (`judged_test_images`)."""
    from keras_vae.data.pipeline import first_examples
    from keras_vae.measure.classifier import (
        SAMPLES_PER_CLASS,
        frechet_distance,
        judged_test_images,
        sample_classes,
        trained_classifier,
    )

    if progress:
        print("classifier: judging the samples' classes (trained once per run, then kept)")
    classifier, record = trained_classifier(run_dir, splits, seed, verbose=2 if progress else 0)
    training = first_examples(splits["train"], len(real)).as_float()
    return {"classifier": record, "samples_per_class": SAMPLES_PER_CLASS,
            "sample_temperature": temperature,
            **sample_classes(vae, classifier, SAMPLES_PER_CLASS, seed, real, temperature),
            **judged_test_images(vae, classifier, real, splits["test"].labels),
            "frechet_real_images": len(real),
            "training_images_frechet_distance": frechet_distance(classifier, real, training)}
