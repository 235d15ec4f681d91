"""The browser page: EXPORT/web, a folder that any static file server shows as a page which
samples the decoder with onnxruntime-web (WebAssembly), explores its latent space and asks
a conditional model for a class.

    python -m http.server -d runs/my-run/export/web     # then open http://localhost:8000

The page itself (index.html, app.js, score.js, style.css) lives in serving/web and is copied as is:
no bundler, no build step. Beside it go the decoders (fp32 and int8 ONNX), `model.json`
(what the page needs to know, derived from the run's record), and the pinned
onnxruntime-web runtime when it was installed with npm (serving/web: `npm ci`); without
it the page loads that version from the CDN below, checked against its integrity hash.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

WEB_DIR = "web"
PAGE_SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "serving", "web")
PAGE_FILES = ("index.html", "app.js", "score.js", "style.css")
ORT_WEB_VERSION = "1.30.0"
"""The onnxruntime-web version serving/web/package.json pins (tested equal)."""
RUNTIME_DIR = os.path.join(PAGE_SOURCE, "node_modules", "onnxruntime-web", "dist")
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs",
                 "ort-wasm-simd-threaded.wasm")
RUNTIME_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
RUNTIME_INTEGRITY = "sha384-Bw6URI+Gvoadw0do7/QrSHUC9D1vCYYK5OSqChFyhyV5mzPL4oe2rOAFljAnS8Sq"
"""Subresource integrity of ort.wasm.min.js 1.30.0 (tested against the npm package)."""
SLIDERS = 8
"""How many latent coordinates the page offers sliders for."""


def write_web(web_dir: str, decoders: dict[str, str], metadata: dict,
              unit_activity=None, scorer: tuple[str, dict] | None = None) -> None:
    """Writes the page into `web_dir`: `decoders` maps "fp32" / "int8" to ONNX files,
    `metadata` is the decoder's ONNX metadata (`export.pipeline.onnx_metadata`),
    `unit_activity` the evaluation's variance
    of each latent unit's posterior mean, when known (the sliders take the most active);
    `scorer` (scorer.onnx, its metadata) for the "score an image" panel."""
    os.makedirs(web_dir)
    for name in PAGE_FILES:
        shutil.copy(os.path.join(PAGE_SOURCE, name), os.path.join(web_dir, name))
    for path in decoders.values():
        _link_or_copy(path, os.path.join(web_dir, os.path.basename(path)))
    model = _page_metadata(metadata, decoders, unit_activity)
    if scorer is not None:
        path, scorer_metadata = scorer
        _link_or_copy(path, os.path.join(web_dir, os.path.basename(path)))
        model["scorer"] = {"file": os.path.basename(path),
                           "threshold": float(scorer_metadata["threshold"]),
                           "fpr": float(scorer_metadata["fpr"])}
    model["runtime"]["local"] = _copy_runtime(web_dir)
    with open(os.path.join(web_dir, "model.json"), "w") as f:
        json.dump(model, f, indent=2)


def _page_metadata(metadata: dict, decoders: dict[str, str], unit_activity) -> dict:
    latent_dim = int(metadata["latent_dim"])
    order = (np.argsort(unit_activity)[::-1] if unit_activity is not None
             else np.arange(latent_dim))
    return {
        "latent_dim": latent_dim,
        "prior": metadata["prior"],
        "component_draw": metadata["component_draw"] == "true",
        "conditional": metadata["conditional"] == "true",
        "label_names": json.loads(metadata["label_names"]),
        "image_shape": json.loads(metadata["image_shape"]),
        "likelihood": metadata["likelihood"], "dataset": metadata["dataset"],
        "decoders": {name: os.path.basename(path) for name, path in decoders.items()},
        "slider_dims": [int(d) for d in order[:SLIDERS]],
        "generator": "serving/sample.py seeded_normal, seeded_uniform",
        "keras_vae_version": metadata["keras_vae_version"],
        "runtime": {"version": ORT_WEB_VERSION, "cdn": RUNTIME_CDN,
                    "integrity": RUNTIME_INTEGRITY},
    }


def _copy_runtime(web_dir: str) -> str | None:
    """Copies the npm-installed runtime into web_dir/ort/; its path for the page, or None
    when it is not installed (the page then takes it from the CDN)."""
    if not all(os.path.isfile(os.path.join(RUNTIME_DIR, n)) for n in RUNTIME_FILES):
        return None
    os.makedirs(os.path.join(web_dir, "ort"))
    for name in RUNTIME_FILES:
        _link_or_copy(os.path.join(RUNTIME_DIR, name), os.path.join(web_dir, "ort", name))
    return "ort/"


def _link_or_copy(source: str, target: str) -> None:
    """A hard link where the filesystem allows (no second copy on disk), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy(source, target)

