"""One export of a trained VAE: write every artifact, verify it, then publish it.

Everything is first written to a staging directory inside the export directory and
verified there against the Keras model. Only verified files are moved into place
(SavedModels as a new TF Serving version, files by atomic rename): an fp32 artifact that
differs from Keras fails the whole export, which then changes nothing that TF Serving or
an edge device could pick up; an int8 decoder that misses its bounds in every scheme
tried is left out, and the verified rest is published with the reason recorded
(`left_out` in manifest.json and summary.json), as a lossy, optional file should not keep
a SavedModel from TF Serving.

Layout of EXPORT (by default RUN_DIR/export):

    vae_decoder/<version>/saved_model.pb, variables/   TF Serving model base paths
    vae_encoder/<version>/saved_model.pb, variables/
    decoder.onnx, decoder_int8.onnx, encoder.onnx      onnxruntime
    latent_decoder.onnx                                decoding a given z
    vae_scorer/<version>/, scorer.onnx                 the anomaly scorer (export/scorer.py)
    decoder.tflite                                     LiteRT
    web/                                               the browser page (export/web.py)
    manifest.json                                      sizes, sha256, names, shapes, parity
"""

from __future__ import annotations

import datetime
import json
import os
import shutil

import keras_vae
from export.endpoints import (
    decoder_endpoint,
    encoder_endpoint,
    label_names_endpoint,
    run_keras,
)
from export.litert import run_tflite, write_tflite
from export.manifest import MANIFEST, fingerprint, model_identity
from export.onnx_model import (
    convolution_weight_share,
    has_convolutions,
    int8_preprocessed,
    run_onnx,
    write_int8,
    write_onnx,
)
from export.saved_model import next_version, publish_version, run_saved_model, write_saved_model
from export.scorer import (
    SCORER_FILES,
    parity_images,
    scorer_endpoint,
    scorer_metadata,
    scorer_misses,
    scorer_parity,
    write_scorer,
)
from export.verify import (
    FP32_TOLERANCE,
    INT8_ROWS_PER_CALL,
    INT8_SIZE_RATIO,
    int8_check_inputs,
    int8_misses,
    int8_quality,
    parity,
    parity_inputs,
    parity_misses,
)
from export.web import WEB_DIR, write_web
from keras_vae.config import TrainConfig
from keras_vae.run.atomic import atomic_path, write_json
from keras_vae.run.cli import RunFailure
from keras_vae.run.layout import (
    EXPORT_DIR,
    SUMMARY,
    directory_bytes,
    load_run,
    read_evaluation,
    read_summary,
)

FILES = {"decoder_onnx": "decoder.onnx", "decoder_int8_onnx": "decoder_int8.onnx",
         "encoder_onnx": "encoder.onnx", "latent_decoder_onnx": "latent_decoder.onnx",
         "decoder_tflite": "decoder.tflite"}
EXPORTED = ("decoder_saved_model", "encoder_saved_model", *FILES, *SCORER_FILES, "web")
"""Every artifact key an export may write into summary.json."""


def onnx_metadata(config: TrainConfig, role: str = "decoder") -> dict[str, str]:
    """What an onnxruntime consumer needs without TensorFlow, as ONNX string properties,
    derived from the run's record. `role` says which file it is: "decoder" (the sampling
    contract), "latent_decoder" (a given z) or "encoder"; `prior` names the prior the
    decoder draws from ("normal" or "vamp"); `component_draw` ("true" / "false")
    whether the decoder takes a `component_draw` input (the VampPrior, a conditional
    model's mixture per class); `conditional` ("true" / "false") whether it takes a
    `label` input;
    `image_shape` ([H, W, C]) and `label_names` are JSON lists; `likelihood` names the
    decoder's other outputs (see `export.endpoints`)."""
    return {
        "role": role,
        "latent_dim": str(sum(config.model.levels)),
        "prior": config.model.prior,
        "component_draw": str(config.model.takes_component_draw).lower(),
        "conditional": str(config.model.conditional).lower(),
        "image_shape": json.dumps(list(config.model.image_shape)),
        "likelihood": config.model.likelihood,
        "label_names": json.dumps(list(config.model.label_names)),
        "dataset": config.dataset,
        "model_config": json.dumps(config.model.to_dict(), sort_keys=True),
        "keras_vae_version": keras_vae.__version__,
    }


def export_model(vae, export_dir: str, config: TrainConfig, unit_activity=None,
                 calibration=None, say=print) -> dict:
    """Exports, verifies and publishes `vae`'s decoder and encoder under `export_dir`;
    `config` is the run's record, from which every file's metadata is derived;
    `unit_activity` (the evaluation's, when there is one) orders the browser page's
    sliders; `calibration` (`keras_vae.measure.scoring.Calibration`, the run's) adds the anomaly
    scorer (an unconditional model's; without one no scorer is written). `say` tells
    each stage as it starts (a 64×64 model's export takes minutes).

    Returns:
        {"version", "paths": {artifact key: absolute path}, "parity": {...}, "int8": {...}}
        where the artifact keys are those of summary.json (`decoder_saved_model`, …);
        `int8["left_out"]` says why no int8 decoder was published, when none was.

    Raises:
        RunFailure: an fp32 artifact misses its parity bound; nothing was published.
    """
    generator = vae.generator()
    decoder = decoder_endpoint(generator, vae.likelihood)
    latent = decoder_endpoint(vae.latent_decoder(), vae.likelihood, "decode_latent")
    encoder_model = vae.encoder_model()
    encoder = encoder_endpoint(encoder_model)
    scorer = _scorer(vae, calibration)
    os.makedirs(export_dir, exist_ok=True)
    version = next_version(export_dir, [decoder.name, encoder.name, "vae_scorer"])
    staging = os.path.join(export_dir, f".staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        endpoints = {"decoder": decoder, "latent": latent, "encoder": encoder,
                     "scorer": scorer}
        say("export: the decoder, latent decoder and encoder as SavedModel, ONNX and "
            "LiteRT")
        staged = _write_all(vae, (generator, encoder_model), endpoints, staging, config)
        scoring = (None if scorer is None else scorer_metadata(
            onnx_metadata(config), calibration, config.image_size is not None))
        if scorer is not None:
            say(f"export: the anomaly scorer (k = {calibration.k}) as SavedModel and ONNX")
            staged.update(write_scorer(vae, scorer, staging, scoring))
        say("export: verifying every file against Keras, then the int8 decoder")
        measured = _verify(vae, endpoints, staged, calibration)
        problems = parity_misses(measured["parity"]) + scorer_misses(
            measured.get("scorer", {}), FP32_TOLERANCE)
        if problems:
            raise RunFailure(f"export not published, verification failed: "
                             f"{'; '.join(problems)}")
        if "left_out" in measured["int8"]:
            os.remove(staged.pop("decoder_int8_onnx"))
        staged["web"] = os.path.join(staging, WEB_DIR)
        write_web(staged["web"], {precision: staged[key] for precision, key in
                                  (("fp32", "decoder_onnx"), ("int8", "decoder_int8_onnx"))
                                  if key in staged},
                  onnx_metadata(config), unit_activity,
                  None if scorer is None else (staged["scorer_onnx"], scoring))
        paths = _publish(staged, export_dir, version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = {**_manifest(endpoints, paths, export_dir, version, measured),
                "model": model_identity(config)}
    write_json(os.path.join(export_dir, MANIFEST), manifest)
    return {"version": version, "paths": paths, **measured}


def _write_all(vae, models, endpoints: dict, staging: str, config: TrainConfig
               ) -> dict[str, str]:
    """Writes every artifact into `staging`; `models`: the Keras models behind the
    decoder and encoder endpoints (generator, encoder), whose variables the SavedModels
    hold (the latent decoder's are among the generator's)."""
    generator, encoder_model = models
    decoder, latent, encoder = (endpoints[k] for k in ("decoder", "latent", "encoder"))
    staged = {"decoder_saved_model": os.path.join(staging, decoder.name),
              "encoder_saved_model": os.path.join(staging, encoder.name),
              **{key: os.path.join(staging, name) for key, name in FILES.items()}}
    write_saved_model(decoder, generator, staged["decoder_saved_model"],
                      extra=(latent, label_names_endpoint(vae)))
    write_saved_model(encoder, encoder_model, staged["encoder_saved_model"])
    write_onnx(decoder, staged["decoder_onnx"], onnx_metadata(config))
    write_onnx(latent, staged["latent_decoder_onnx"], onnx_metadata(config, "latent_decoder"))
    write_onnx(encoder, staged["encoder_onnx"], onnx_metadata(config, "encoder"))
    write_tflite(staged["decoder_saved_model"], staged["decoder_tflite"])
    return staged


def _verify(vae, endpoints: dict, staged: dict[str, str], calibration) -> dict:
    """Measures every staged artifact against Keras (the scorer, when there is one, in
    batches for its `calibration.k`). The int8 decoder is written here, as its weight
    scales are chosen by this measurement (`_quantize_decoder`)."""
    from keras_vae.measure.scoring import batch_size_for

    decoder, latent, encoder = (endpoints[k] for k in ("decoder", "latent", "encoder"))
    decoder_inputs = parity_inputs(decoder.inputs, vae.config.classes)
    decoded = run_keras(decoder, decoder_inputs)
    labels = {"label": decoder_inputs["label"]} if "label" in decoder_inputs else {}
    images = {"image": decoded["image"], **labels}  # data-like inputs, no dataset needed
    encoded = run_keras(encoder, images)
    latents = {"z": encoded["z_mean"], **labels}  # the encoded images, decoded again
    latent_decoded = run_keras(latent, latents)
    scorer = ({} if endpoints["scorer"] is None else {"scorer": scorer_parity(
        endpoints["scorer"], staged, parity_images(decoded["image"]),
        batch_size_for(vae, calibration.k))})
    return {**scorer,
        "parity": {
            "decoder_saved_model": parity(
                run_saved_model(staged["decoder_saved_model"], decoder_inputs), decoded),
            "decoder_onnx": parity(run_onnx(staged["decoder_onnx"], decoder_inputs), decoded),
            "decoder_tflite": parity(run_tflite(staged["decoder_tflite"], decoder_inputs),
                                     decoded),
            "encoder_saved_model": parity(
                run_saved_model(staged["encoder_saved_model"], images), encoded),
            "encoder_onnx": parity(run_onnx(staged["encoder_onnx"], images), encoded),
            "latent_decoder_saved_model": parity(run_saved_model(
                staged["decoder_saved_model"], latents, latent.name), latent_decoded),
            "latent_decoder_onnx": parity(run_onnx(staged["latent_decoder_onnx"], latents),
                                          latent_decoded),
        },
        "int8": _quantize_decoder(staged, int8_check_inputs(vae)),
    }


def _scorer(vae, calibration):
    """The scorer's endpoint, or None: without a calibration, or for a conditional model
    (whose likelihood is of an image given its class)."""
    if calibration is None or vae.config.conditional:
        return None
    from keras_vae.measure.scoring import Scorer

    return scorer_endpoint(Scorer(vae, calibration.k, calibration))


def _quantize_decoder(staged: dict[str, str], inputs: dict) -> dict:
    """Writes the int8 decoder with per-tensor weight scales, the faster ones, or
    per-channel ones when per-tensor misses a bound, as deeper decoders do; a decoder
    with convolutions that misses with both tries them again with its convolutions kept
    fp32 (`export.onnx_model.convolutions`) — unless the convolutions hold so much of the
    weights that the file could not shrink to `INT8_SIZE_RATIO` of fp32's (a spatial
    decoder's 99 %). A per-tensor file over that size ratio is not retried with
    per-channel scales, which only add to it. Returns the measured quality of the last
    one written on the prior draws `inputs` (`int8_check_inputs`), with `left_out`, the
    bounds it misses, when every scheme missed."""
    fp32_onnx = run_onnx(staged["decoder_onnx"], inputs, INT8_ROWS_PER_CALL)
    convolutional = has_convolutions(staged["decoder_onnx"])
    float_convolutions_can_shrink = convolutional and (
        convolution_weight_share(staged["decoder_onnx"]) < INT8_SIZE_RATIO)
    schemes = [(per_channel, float_convolutions)
               for float_convolutions in ((False, True) if float_convolutions_can_shrink
                                          else (False,))
               for per_channel in (False, True)]
    too_large = set()  # convolution settings whose per-tensor file missed the size bound
    with int8_preprocessed(staged["decoder_onnx"]) as prepared:
        for per_channel, float_convolutions in schemes:
            if float_convolutions in too_large:
                continue  # per-channel scales only add to a file's size
            write_int8(staged["decoder_onnx"], staged["decoder_int8_onnx"], per_channel,
                       float_convolutions, prepared)
            quality = {**int8_quality(run_onnx(staged["decoder_int8_onnx"], inputs,
                                               INT8_ROWS_PER_CALL), fp32_onnx,
                                      staged["decoder_int8_onnx"], staged["decoder_onnx"]),
                       "weight_scales": "per channel" if per_channel else "per tensor"}
            if convolutional:
                quality["convolutions"] = "fp32" if float_convolutions else "int8"
            problems = int8_misses(quality)
            if not problems:
                return quality
            if quality["size_ratio"] > INT8_SIZE_RATIO:
                too_large.add(float_convolutions)
    return {**quality, "left_out": "; ".join(problems)}


def _publish(staged: dict[str, str], export_dir: str, version: int) -> dict[str, str]:
    """Moves the staged artifacts into place; a file an earlier export left that this one
    does not have (an int8 decoder, an older export's prior.npz) is removed, so no
    sampler can take it for this decoder's."""
    paths = {}
    for key in ("decoder_saved_model", "encoder_saved_model", "scorer_saved_model"):
        if key not in staged:
            continue
        model_name = os.path.basename(staged[key])
        paths[key] = publish_version(staged[key], export_dir, model_name, version)
    for key in staged.keys() - paths.keys():
        paths[key] = os.path.join(export_dir, os.path.basename(staged[key]))
        with atomic_path(paths[key]) as tmp:  # a directory (web/) replaces the old one too
            os.replace(staged[key], tmp)
    for key, name in (("prior", "prior.npz"), ("decoder_int8_onnx", FILES["decoder_int8_onnx"])):
        stale = os.path.join(export_dir, name)
        if key not in staged and os.path.exists(stale):
            os.remove(stale)
    return paths


def _manifest(endpoints: dict, paths: dict[str, str], export_dir: str, version: int,
              measured: dict) -> dict:
    artifacts = {}
    for key, path in paths.items():
        description = ({"contents": "the browser page (python -m http.server -d web)"}
                       if key == "web" else endpoints[key.split("_")[0]].describe())
        if key in measured.get("scorer", {}):
            description["parity_vs_keras"] = measured["scorer"][key]
        entry = {"path": os.path.relpath(path, export_dir), **fingerprint(path),
                 **description}
        if key in measured["parity"]:
            entry["parity_vs_keras"] = measured["parity"][key]
        if key == "decoder_int8_onnx":
            entry["int8_vs_fp32_onnx"] = measured["int8"]
        artifacts[key] = entry
    left_out = ({"left_out": {"decoder_int8_onnx": measured["int8"]}}
                if "left_out" in measured["int8"] else {})
    return {
        "version": version,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "keras_vae_version": keras_vae.__version__,
        "artifacts": artifacts,
        **left_out,
    }


def export_run(run_dir: str, export_dir: str | None = None) -> dict:
    """Exports a run's best checkpoint into `export_dir` (default RUN_DIR/export) with
    `export_model`, and records it in the run's summary.json when the run has one: its
    artifacts and the `export` section, or the error of a failed verification (then
    raised). What both `python -m keras_vae.train` and `python -m export` do."""
    export_dir = export_dir or os.path.join(run_dir, EXPORT_DIR)
    vae, config = load_run(run_dir)
    summary = read_summary(run_dir)
    try:
        result = export_model(vae, export_dir, config, _unit_activity(run_dir),
                              _calibration(run_dir, vae, config))
    except RunFailure as error:
        if summary:
            _record(run_dir, {**summary, "export": {"error": str(error)}})
        raise
    artifacts, section = summary_entries(result, run_dir, export_dir)
    if summary:
        earlier = {key: path for key, path in summary.get("artifacts", {}).items()
                   if key not in EXPORTED}  # an earlier export's, this one may lack
        _record(run_dir, {**summary, "artifacts": {**earlier, **artifacts},
                          "export": section,
                          "run_dir_bytes": directory_bytes(run_dir)})
    return {**result, "artifacts": artifacts}


def _calibration(run_dir: str, vae, config):
    """The run's anomaly-score calibration (measured on its validation images once, then
    read from RUN/scoring.json), or None for a conditional model, which has no scorer."""
    if config.model.conditional:
        return None
    from keras_vae.measure.scoring import calibration_for

    return calibration_for(run_dir, vae, config)


def _unit_activity(run_dir: str):
    """The evaluation's activity of each latent unit, if the run was evaluated."""
    return (read_evaluation(run_dir) or {}).get("unit_activity")


def _record(run_dir: str, summary: dict) -> None:
    write_json(os.path.join(run_dir, SUMMARY), summary)


def summary_entries(result: dict, run_dir: str, export_dir: str) -> tuple[dict, dict]:
    """(artifact paths relative to the run directory, the summary's `export` section)."""
    artifacts = {key: os.path.relpath(path, run_dir) for key, path in result["paths"].items()}
    section = {"version": result["version"],
               "export_dir": os.path.relpath(export_dir, run_dir),
               "manifest": os.path.relpath(os.path.join(export_dir, MANIFEST), run_dir),
               "parity_vs_keras": result["parity"],
               "int8_vs_fp32_onnx": result["int8"],
               **({"scorer_vs_keras": result["scorer"]} if "scorer" in result else {})}
    return artifacts, section
