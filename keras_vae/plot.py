"""`python -m keras_vae.plot RUN_DIR`: redraw a finished run's pictures.

Writes into RUN_DIR the sample grid, the reconstructions (test inputs above their
reconstructions), the training and validation curves and, for a 2-D latent, the decoded
manifold over Normal quantiles and the scatter of test z_mean coloured by label (datasets
with labels). Training draws the same pictures with the same code (`pictures.draw_run`);
this command redraws them, e.g. after a change of plotting code or for an older run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from keras_vae.run.atomic import write_json
from keras_vae.run.cli import ArgumentParser, load_tensorflow, run_command
from keras_vae.run.layout import (
    SUMMARY,
    check_trained_run,
    ensure_not_training,
    load_run,
    read_summary,
)


def plot(run_dir: str) -> dict[str, str]:
    """Draws every picture of the run; returns {artifact: path} and records the pictures
    among the run's artifacts in summary.json when the run has one (an interrupted run
    has not). (TensorFlow loads here, after the argument checks.)"""
    from keras_vae.data.pipeline import datasets_for, images_of, splits_for
    from keras_vae.measure.pictures import draw_run
    from keras_vae.run.resume import read_history

    ensure_not_training(run_dir)
    vae, config = load_run(run_dir)
    splits = splits_for(config)
    _, _, test_data = datasets_for(config, splits)
    test_images = images_of(test_data)
    drawn = draw_run(vae, test_images, splits["test"].labels, read_history(run_dir), run_dir,
                     config.seed)
    summary = read_summary(run_dir)
    if summary:  # an unfinished run gets no summary.json: that would mark it finished
        summary["artifacts"] = {**summary.get("artifacts", {}), **drawn}
        write_json(os.path.join(run_dir, SUMMARY), summary)
    return {name: os.path.join(run_dir, path) for name, path in drawn.items()}


def main(argv: Sequence[str]) -> None:
    parser = ArgumentParser(prog="python -m keras_vae.plot",
                            description="Redraw a trained run's pictures: samples, "
                                        "reconstructions, curves, 2-D latent maps.")
    parser.add_argument("run_dir", help="a run directory written by keras_vae.train")
    args = parser.parse_args(argv)
    check_trained_run(args.run_dir)
    load_tensorflow(args.debug)
    for name, path in plot(args.run_dir).items():
        print(f"  {name:<20} {path}")


if __name__ == "__main__":
    sys.exit(run_command(main, "keras_vae.plot"))
