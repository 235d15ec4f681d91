"""`python -m keras_vae.score_bench RUN`: how well each anomaly score tells the run's own
test images from the development sets (`keras_vae.measure.ood_sets`), and what scoring costs.

For every set it reports the AUROC of every score tried (higher = the score ranks the
set's images above the test images; 0.5 is chance, below 0.5 the score points the wrong
way): the likelihood −log p(x) (k importance samples), its two-sided typicality
|z_nll|, the other-views term (how much likelier the image is flipped or turned), for a
hierarchy the likelihood ratio LLR^{>1}, the complexity-corrected
likelihood −log₂ p(x) − L(x) with L(x) from a real compressor (PNG through Pillow,
level 9) and from the predictive coder the scorer could carry (`predictive_code_bits`),
and the default score (`keras_vae.measure.scoring.Scorer`). Also the share of test images the
stored threshold flags (the calibrated false-positive rate, measured on images the
calibration never saw), the share of each set it flags, and images scored per second.
Prints a table and writes RUN/score_bench.json.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from keras_vae.config import DEFAULT_FPR, DEFAULT_SCORE_K
from keras_vae.run.atomic import write_json
from keras_vae.run.cli import ArgumentParser, load_tensorflow, positive_int, run_command
from keras_vae.run.layout import check_trained_run, load_run
from keras_vae.run.machine import describe_machine

SCORE_BENCH_JSON = "score_bench.json"


def png_bits(images: np.ndarray) -> np.ndarray:
    """Bits of each uint8 image as a PNG written by Pillow at compression level 9."""
    from PIL import Image

    def bits(image: np.ndarray) -> int:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            buffer, format="PNG", compress_level=9)
        return 8 * len(buffer.getvalue())

    return np.array([bits(image) for image in images], np.float64)


def candidate_scores(scorer, images: np.ndarray, calibration) -> dict[str, np.ndarray]:
    """Every score tried, for uint8 images (higher = more unusual)."""

    from keras_vae.measure.scoring import LOG2, batch_size_for, in_batches, predictive_code_bits

    size = batch_size_for(scorer.vae, scorer.k)
    terms = in_batches(scorer.terms_function(), images, size)
    nll, nll_bits = terms["neg_log_likelihood"], terms["neg_log_likelihood"] / LOG2
    coded = in_batches(lambda x: {"bits": predictive_code_bits(x)}, images, 1000)["bits"]
    found = {"likelihood": nll, "typicality": np.abs(nll - calibration.nll_mean),
             "other views": terms["view"],
             "complexity (PNG)": nll_bits - png_bits(images),
             "complexity (predictive coder)": nll_bits - coded}
    if scorer.vae.config.hierarchical:
        found["likelihood ratio"] = in_batches(scorer.terms_function("ratio_terms"),
                                               images, size)["llr"]
    found["default"] = np.asarray(scorer.score_of(terms, calibration))
    return found


def bench(run_dir: str, count: int, k: int, photo_folder: str | None = None) -> dict:
    """AUROCs of every score on every development set, the test split's false-positive
    rate at the stored threshold, and the scoring speed."""
    from keras_vae.data.pipeline import load_splits, splits_for
    from keras_vae.measure.ood_sets import PHOTO_FOLDER, development_sets
    from keras_vae.measure.scoring import Scorer, auroc, calibration_for, to_model_pixels

    vae, config = load_run(run_dir)
    calibration = calibration_for(run_dir, vae, config, k, DEFAULT_FPR)
    scorer = Scorer(vae, k, calibration)
    inside = to_model_pixels(splits_for(config)["test"])[:count]
    digits = (to_model_pixels(load_splits("binarized_mnist", config.data_dir)["test"])
              if tuple(config.model.image_shape) == (28, 28, 1) else None)
    started = time.perf_counter()
    reference = candidate_scores(scorer, inside, calibration)
    seconds = time.perf_counter() - started
    rows, flagged = {}, {}
    for name, images in development_sets(inside, digits, count,
                                         photo_folder=photo_folder or PHOTO_FOLDER).items():
        print(f"scoring {len(images):,} images of {name}", flush=True)
        scores = candidate_scores(scorer, images, calibration)
        rows[name] = {score: auroc(reference[score], values) for score, values in scores.items()}
        flagged[name] = float(np.mean(scores["default"] > calibration.threshold))
    return {"date": time.strftime("%Y-%m-%d"), "machine": describe_machine(), "k": k,
            "run": os.path.abspath(run_dir), "test_images": len(inside),
            "aurocs": rows, "flagged": flagged,
            "threshold": calibration.threshold, "fpr": calibration.fpr,
            "test_flagged": float(np.mean(reference["default"] > calibration.threshold)),
            "candidate_images_per_s": len(inside) / seconds}


def format_table(result: dict) -> str:
    scores = list(next(iter(result["aurocs"].values())))
    lines = [f"AUROC against {result['test_images']:,} test images, k = {result['k']}, "
             f"{result['machine']}, {result['date']}",
             "| set | " + " | ".join(scores) + " | flagged by the default |",
             "|---|" + "---|" * (len(scores) + 1)]
    for name, row in result["aurocs"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[s]:.3f}" for s in scores)
                     + f" | {result['flagged'][name]:.1%} |")
    lines.append(f"threshold {result['threshold']:.3f} (validation false-positive rate "
                 f"{result['fpr']:g}) flags {result['test_flagged']:.2%} of the test images")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    parser = ArgumentParser(prog="python -m keras_vae.score_bench",
                            description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run directory written by keras_vae.train")
    parser.add_argument("--count", type=positive_int, default=10_000,
                        help="images of each set (default: 10000)")
    parser.add_argument("--k", type=positive_int, default=DEFAULT_SCORE_K,
                        help=f"importance samples per image (default: {DEFAULT_SCORE_K})")
    parser.add_argument("--photos", default=None,
                        help="folder of JPEG photographs to cut patches from (default: "
                             "/usr/share/backgrounds/mate, apt install mate-backgrounds)")
    args = parser.parse_args(argv)
    check_trained_run(args.run_dir)
    load_tensorflow(args.debug)
    result = bench(args.run_dir, args.count, args.k, args.photos)
    print(format_table(result))
    out = os.path.join(args.run_dir, SCORE_BENCH_JSON)
    write_json(out, result)
    print(f"→ {out}")


if __name__ == "__main__":
    sys.exit(run_command(main, "keras_vae.score_bench"))
