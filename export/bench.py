"""`python -m export.bench RUN_DIR`: how fast each exported decoder samples, on this machine.

For the Keras model and every exported format it times single calls: latency p50 / p99 at
batch 1 (a device drawing one image) and throughput at batch 256 (a server). Every row
does the same work: it computes every output of the exported decoder, `image` and the
likelihood's parameters (`export.endpoints.decoder_outputs`). onnxruntime and LiteRT run
with `--threads` intra-op threads (default 1); TensorFlow uses its default thread pools
(all cores). Prints a table and writes it to EXPORT/bench.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from export.manifest import MANIFEST
from keras_vae.run.cli import (
    ArgumentParser,
    UsageError,
    load_tensorflow,
    positive_float,
    positive_int,
    run_command,
)
from keras_vae.run.layout import (
    EXPORT_DIR,
    check_trained_run,
    load_checkpoint,
    read_run_config,
    read_summary,
)
from keras_vae.run.machine import describe_machine

WARMUP_CALLS = 50


def time_calls(call: Callable[[], object], seconds: float) -> np.ndarray:
    """Per-call wall times (µs) over about `seconds`, after warm-up calls."""
    for _ in range(WARMUP_CALLS):
        call()
    times, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 20:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return np.asarray(times) * 1e6


def onnx_outputs(onnx_session) -> Callable[[dict], dict]:
    """inputs → {output name: array} for every output of an onnxruntime session."""
    names = [o.name for o in onnx_session.get_outputs()]
    return lambda inputs: dict(zip(names, onnx_session.run(names, inputs), strict=True))


def exported_decoders(run_dir: str) -> dict[str, str]:
    """artifact key → path of the run's exported files: those its summary.json records,
    or, for a run whose training did not finish (no summary), those of the manifest in
    RUN_DIR/export that `python -m export` wrote."""
    artifacts = read_summary(run_dir).get("artifacts", {})
    if "decoder_tflite" in artifacts:
        return {key: os.path.join(run_dir, path) for key, path in artifacts.items()}
    export_dir = os.path.join(run_dir, EXPORT_DIR)
    try:
        with open(os.path.join(export_dir, MANIFEST)) as f:
            listed = json.load(f)["artifacts"]
    except (OSError, ValueError, KeyError):
        raise UsageError(f"{run_dir} has no exported decoder (neither summary.json nor "
                         f"{EXPORT_DIR}/{MANIFEST} lists one); run `python -m export "
                         f"{run_dir}` first") from None
    return {key: os.path.join(export_dir, entry["path"]) for key, entry in listed.items()}


def runners(run_dir: str, paths: dict[str, str], threads: int) -> dict[str, Callable]:
    """name → factory(inputs) returning a zero-argument call that decodes `inputs`
    (its inputs by name, `benchmark`) into every decoder output, for the exported files
    `paths` (`exported_decoders`)."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from export.endpoints import decoder_outputs
    from export.onnx_model import session

    vae = load_checkpoint(run_dir)
    signature = tf.saved_model.load(paths["decoder_saved_model"]).signatures["serving_default"]
    onnx_fp32 = onnx_outputs(session(paths["decoder_onnx"], threads))
    onnx_int8 = (onnx_outputs(session(paths["decoder_int8_onnx"], threads))
                 if "decoder_int8_onnx" in paths else None)  # left out by the export
    litert = Interpreter(model_path=paths["decoder_tflite"], num_threads=threads
                         ).get_signature_runner("serving_default")
    generator = vae.generator()

    def keras_outputs(inputs):
        named = [inputs[i.name] for i in generator.inputs]
        return decoder_outputs(vae.likelihood, generator(named, training=False))

    def tensors(inputs):
        return {k: tf.constant(v) for k, v in inputs.items()}

    int8 = ({"ONNX int8 (onnxruntime)": lambda x: lambda: onnx_int8(x)}
            if onnx_int8 is not None else {})
    return {
        "Keras model (eager call)": lambda x: lambda: keras_outputs(x),
        "SavedModel (serving_default)": lambda x: (lambda t: lambda: signature(**t))(
            tensors(x)),
        "ONNX fp32 (onnxruntime)": lambda x: lambda: onnx_fp32(x),
        **int8,
        "LiteRT (ai_edge_litert)": lambda x: lambda: litert(**x),
    }


def benchmark(run_dir: str, threads: int = 1, seconds: float = 2.0) -> dict:
    paths = exported_decoders(run_dir)
    from export.endpoints import sampling_feed

    model = read_run_config(run_dir).model
    names = ["noise", "temperature", *(["label"] if model.conditional else []),
             *(["component_draw"] if model.takes_component_draw else [])]
    one, batch = (sampling_feed(names, n, sum(model.levels)) for n in (1, 256))
    rows = []
    for name, make_call in runners(run_dir, paths, threads).items():
        single = time_calls(make_call(one), seconds)
        batched = time_calls(make_call(batch), seconds)
        rows.append({"runtime": name, "outputs": sorted(make_call(one)()),
                     "batch1_p50_us": float(np.percentile(single, 50)),
                     "batch1_p99_us": float(np.percentile(single, 99)),
                     "batch256_examples_per_s": float(256e6 / np.median(batched))})
    return {"date": time.strftime("%Y-%m-%d"), "machine": describe_machine(), "threads": threads,
            "latent_dim": sum(model.levels), "outputs": rows[0]["outputs"], "rows": rows}


def format_table(result: dict) -> str:
    lines = [f"decoder sampling, {result['machine']}, {result['date']}; onnxruntime/LiteRT "
             f"intra-op threads: {result['threads']}, TensorFlow: default; every row "
             f"computes every output ({', '.join(result['outputs'])})",
             "| runtime | batch 1 p50 (µs) | batch 1 p99 (µs) | batch 256 (images/s) |",
             "|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['runtime']} | {row['batch1_p50_us']:.1f} | "
                     f"{row['batch1_p99_us']:.1f} | {row['batch256_examples_per_s']:,.0f} |")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    parser = ArgumentParser(prog="python -m export.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="onnxruntime and LiteRT intra-op threads (default: 1)")
    parser.add_argument("--seconds", type=positive_float, default=2.0,
                        help="timing budget per runtime and batch size (default: 2)")
    args = parser.parse_args(argv)
    check_trained_run(args.run_dir)
    load_tensorflow(args.debug)
    result = benchmark(args.run_dir, args.threads, args.seconds)
    print(format_table(result))
    from keras_vae.run.atomic import write_json

    out = os.path.join(args.run_dir, EXPORT_DIR, "bench.json")
    write_json(out, result)
    print(f"→ {out}")


if __name__ == "__main__":
    sys.exit(run_command(main, "export.bench"))
