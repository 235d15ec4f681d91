"""`python -m keras_vae.evaluate RUN_DIR`: how good the model really is, in nats.

Reports, on the test split of the run's dataset (or, with `--split train`, on its
training split, which sets the generalization gap beside the test figure): the negative
ELBO (one z per image), the importance-sampled NLL with k samples per image (default 5000,
as in the IWAE paper; see `keras_vae.measure.nll`), active latent units and the KL per unit. A
conditional model's figures are those of log p(x|y), and its NLL is stored as
`test_nll_given_label`, so it is never compared with an unconditional NLL by mistake. On
labelled data a classifier judges the model's samples (`keras_vae.measure.classifier`): their
class accuracy for a conditional model, their class histogram for an unconditional one.
Results go to RUN_DIR/evaluation.json (another split's to evaluation_SPLIT.json) together
with the checkpoint they measured (its epoch and sha256), so an evaluation can be told
apart from one of an older checkpoint. A run that is still training is refused: its best
checkpoint is not final.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence

from keras_vae.measure.evaluation import MEAN_PIXEL_SAMPLES, estimate_name, evaluate
from keras_vae.run.cli import (
    ArgumentParser,
    load_tensorflow,
    positive_float,
    positive_int,
    run_command,
)
from keras_vae.run.layout import (
    SPLITS,
    check_trained_run,
    evaluation_files,
    read_evaluation,
)


def format_report(result: dict) -> str:
    epoch, split = result["checkpoint"]["epoch"], result["split"]
    of = f"−{result['losses_bound']}"
    return "\n".join([
        f"{result['dataset']} {split}, {result['examples']:,} "
        f"example{'' if result['examples'] == 1 else 's'}, "
        f"checkpoint of epoch {epoch if epoch is not None else '?'}",
        f"  negative ELBO (bound on {of}) {result[f'{split}_neg_elbo']:.2f} nats "
        f"(reconstruction {result[f'{split}_reconstruction']:.2f} + KL "
        f"{result[f'{split}_kl']:.2f})",
        _estimate_line(result),
        f"  active units {result['active_units']} of {len(result['unit_activity'])}"
        + (f" ({', '.join(map(str, result['active_units_per_level']))} by level)"
           if len(result["active_units_per_level"]) > 1 else ""),
        *([f"  mean pixel of {MEAN_PIXEL_SAMPLES:,} samples "
           f"{result['sample_mean_pixel']:.3f}, of the test images "
           f"{result['test_mean_pixel']:.3f}"] if "sample_mean_pixel" in result else []),
        *_class_lines(result),
        f"  {result['seconds']:.0f} s, peak memory {result['peak_rss_mb']:,.0f} MB"])


def _estimate(result: dict) -> tuple[str, float, float | None]:
    """(key, value, standard error) of an evaluation's importance-sampled estimate."""
    conditional = result["losses_bound"] == "log p(x|y)"
    for likelihood in (True, False):
        name = estimate_name(result["split"], likelihood, conditional)
        if name in result:
            return name, result[name], result[f"{name}_standard_error"]
    raise KeyError(f"no importance-sampled estimate in the {result['split']} evaluation")


def _estimate_line(result: dict) -> str:
    name, value, error = _estimate(result)
    if "cross_entropy" in name:
        return (f"  cross-entropy, k = {result['k']}: {value:.2f} nats (Bernoulli against "
                f"gray levels: not a likelihood)")
    spread = "one image: no standard error" if error is None else f"± {error:.2f} standard error"
    return (f"  NLL −{result['losses_bound']}, k = {result['k']}: {value:.2f} nats "
            f"({spread}), {result[f'{name}_bits_per_dim']:.4f} bits/dim")


def generalization_gap(measured: dict, test: dict | None) -> str:
    """The test estimate minus that of another split (the training split's: how much worse
    the model does on images it has not seen), with the standard error of the difference,
    when both measured the same checkpoint with the same k and seed; otherwise the
    command that would give the test figure to compare with."""
    same = ("k", "seed")
    if (test is None or any(test[key] != measured[key] for key in same)
            or test["checkpoint"]["sha256"] != measured["checkpoint"]["sha256"]):
        return (f"  no test evaluation of this checkpoint at k = {measured['k']}, seed "
                f"{measured['seed']} to compare with (python -m keras_vae.evaluate RUN_DIR "
                f"--k {measured['k']} --max-examples {measured['examples']})")
    _, other, other_error = _estimate(measured)
    _, tested, test_error = _estimate(test)
    error = ("" if None in (other_error, test_error)
             else f" ± {math.hypot(other_error, test_error):.2f}")
    return (f"  test − {measured['split']}: {tested - other:+.2f}{error} nats "
            f"(test {tested:.2f} on its first {test['examples']:,} images, "
            f"{measured['split']} {other:.2f} on its first {measured['examples']:,})")


def _class_lines(result: dict) -> list[str]:
    if "classifier" not in result:
        return []
    temperature = result.get("sample_temperature", 1.0)
    judge = (f"(classifier test accuracy {result['classifier']['test_accuracy']:.1%}, "
             f"{result['samples_per_class']:,} samples per class"
             f"{'' if temperature == 1.0 else f', temperature {temperature:g}'})")
    distance = (f"  Fréchet distance of the samples to the {result['frechet_real_images']:,} "
                f"test images in the classifier's features: "
                f"{result['sample_frechet_distance']:.2f} (as many training images: "
                f"{result['training_images_frechet_distance']:.2f})"
                if result["training_images_frechet_distance"] is not None else
                "  Fréchet distance: none, it needs at least 2 test images")
    if "mean_sample_class_accuracy" in result:
        per_class = ", ".join(f"{name} {value:.0%}"
                              for name, value in result["sample_class_accuracy"].items())
        samples = [f"  samples of the class asked for: "
                   f"{result['mean_sample_class_accuracy']:.1%} {judge}", f"    {per_class}"]
    else:
        histogram = ", ".join(f"{name} {value:.0%}"
                              for name, value in result["sample_class_histogram"].items())
        samples = [f"  classes of the prior samples {judge}:", f"    {histogram}"]
    return [*samples, *_judged_test_lines(result), distance]


def _judged_test_lines(result: dict) -> list[str]:
    if "test_class_accuracy" not in result:  # evaluated before the judge's own figures
        return []
    reconstructed = result["reconstruction_class_accuracy"]
    per_class = ", ".join(f"{name} {real:.0%}/{reconstructed[name]:.0%}"
                          for name, real in result["test_class_accuracy"].items())
    return [f"  the classifier on the test images {result['mean_test_class_accuracy']:.1%}, "
            f"on their reconstructions {result['mean_reconstruction_class_accuracy']:.1%}:",
            f"    {per_class}"]


def main(argv: Sequence[str]) -> None:
    parser = ArgumentParser(prog="python -m keras_vae.evaluate",
                            description="Test negative ELBO, importance-sampled NLL, active "
                                        "units of a trained run.")
    parser.add_argument("run_dir", help="a run directory written by keras_vae.train")
    parser.add_argument("--k", type=positive_int, default=5000,
                        help="importance samples per image (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the importance samples (default: %(default)s)")
    parser.add_argument("--max-examples", type=positive_int, default=None,
                        help="evaluate only the first N examples of the split (the "
                             "classifier that judges samples still learns from the whole "
                             "training split)")
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="the split to measure; train or validation beside test show "
                             "the generalization gap (written to evaluation_SPLIT.json; "
                             "default: %(default)s)")
    parser.add_argument("--no-class-check", action="store_true",
                        help="labelled data: skip training a classifier to judge the "
                             "classes of the model's samples")
    parser.add_argument("--sample-temperature", type=positive_float, default=1.0,
                        help="labelled data: draw the judged samples at this temperature, "
                             "as the samplers' --temperature (default: %(default)s)")
    args = parser.parse_args(argv)
    check_trained_run(args.run_dir)
    load_tensorflow(args.debug)
    result = evaluate(args.run_dir, args.k, args.seed, args.max_examples, progress=True,
                      class_check=not args.no_class_check,
                      sample_temperature=args.sample_temperature, split=args.split)
    print(format_report(result))
    if args.split != "test":
        print(generalization_gap(result, read_evaluation(args.run_dir, "test")))
    print(f"→ {os.path.join(args.run_dir, evaluation_files(args.split)[0])}")


if __name__ == "__main__":
    sys.exit(run_command(main, "keras_vae.evaluate"))
