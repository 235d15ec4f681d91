"""`python -m export RUN_DIR`: export a finished (or interrupted) run's best checkpoint.

Each call adds a new version under EXPORT/vae_decoder and EXPORT/vae_encoder (TF Serving
layout), refreshes the ONNX / LiteRT files and manifest.json, and records the export in
the run's summary.json when the run has one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from export.manifest import refuse_other_model
from keras_vae.run.cli import ArgumentParser, UsageError, load_tensorflow, run_command
from keras_vae.run.layout import (
    EXPORT_DIR,
    check_trained_run,
    read_run_config,
)


def main(argv: Sequence[str]) -> None:
    parser = ArgumentParser(prog="python -m export",
                            description="Export a run's VAE: TF Serving SavedModels, ONNX "
                                        "(fp32 + int8), LiteRT; verified against Keras.")
    parser.add_argument("run_dir", help="a run directory written by keras_vae.train")
    parser.add_argument("--export-dir", default=None,
                        help="where to export (default: RUN_DIR/export); may be a TF "
                             "Serving model base shared by retrainings of one model")
    parser.add_argument("--replace-model", action="store_true",
                        help="publish into an --export-dir that holds another model's "
                             "versions (other data or signature), as its next version")
    args = parser.parse_args(argv)

    check_trained_run(args.run_dir)
    config = read_run_config(args.run_dir)
    export_dir = os.path.normpath(args.export_dir or os.path.join(args.run_dir, EXPORT_DIR))
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise UsageError(f"--export-dir {export_dir} is a file; pass a directory")
    if not args.replace_model:
        refuse_other_model(export_dir, config)
    try:
        os.makedirs(export_dir, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create export directory {export_dir}: {error.strerror}; "
                         f"pass a writable --export-dir") from None
    load_tensorflow(args.debug)
    from export.pipeline import export_run

    result = export_run(args.run_dir, export_dir)
    print(f"export version {result['version']} → {export_dir}")
    for key, path in result["artifacts"].items():
        print(f"  {key:<20} {os.path.normpath(os.path.join(args.run_dir, path))}")
    if "left_out" in result["int8"]:
        print(f"  decoder_int8_onnx    left out, every int8 scheme missed a bound: "
              f"{result['int8']['left_out']}; the formats above are verified")


if __name__ == "__main__":
    sys.exit(run_command(main, "export"))
