"""manifest.json: what an export contains, so a consumer can check what it received.

Per artifact: its path (relative to the export directory), size in bytes, sha256, input
and output names and shapes, and the differences measured against the Keras model. For a
SavedModel directory the size is the sum over its files and the sha256 covers every file's
relative path and content in sorted order. `model`: the data and signature of the model
exported (`model_identity`), so that the next export into the same directory can tell
whether it is the same model. Reading it needs no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os

from keras_vae.run.cli import UsageError

MANIFEST = "manifest.json"
"""Its file name in an export directory."""


def fingerprint(path: str) -> dict:
    """{"bytes", "sha256"} of a file, or of a directory's files taken in sorted order."""
    digest, total = hashlib.sha256(), 0
    if os.path.isdir(path):
        files = sorted(os.path.relpath(os.path.join(root, name), path)
                       for root, _, names in os.walk(path) for name in names)
        for relative in files:
            digest.update(relative.encode() + b"\0")
            total += _feed(digest, os.path.join(path, relative))
    else:
        total = _feed(digest, path)
    return {"bytes": total, "sha256": digest.hexdigest()}


def _feed(digest, path: str) -> int:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return os.path.getsize(path)


def model_identity(config) -> dict:
    """What a TF Serving client or edge sampler relies on of an exported model: its data
    and the decoder's signature (from the run's `TrainConfig`), in the JSON form that
    manifest.json holds, so that it compares equal to what a manifest reads back (a
    hierarchy's level sizes are a tuple in the record, a list in JSON)."""
    model = config.model
    return json.loads(json.dumps({
        "dataset": config.dataset, "image_shape": model.image_shape,
        "latent_dim": model.latent_dim, "likelihood": model.likelihood,
        "mixture_components": model.mixture_components, "prior": model.prior,
        "conditional": model.conditional, "label_names": model.label_names}))


def refuse_other_model(export_dir: str, config) -> None:
    """Refuses to add a version of one model to an export directory that holds another's:
    TF Serving would serve it under the same name as the next version, and the files
    beside it (decoder.onnx, encoder.onnx) would change meaning without a word."""
    path = os.path.join(export_dir, MANIFEST)
    try:
        with open(path) as f:
            existing = json.load(f).get("model")
    except (OSError, ValueError):
        return  # nothing exported there yet, or an export that predates the record
    wanted = model_identity(config)
    differing = [f"{key} {existing.get(key)!r} (this run: {value!r})"
                 for key, value in wanted.items() if existing and existing.get(key) != value]
    if differing:
        raise UsageError(f"{export_dir} holds the export of another model ("
                         f"{', '.join(differing)}); pass --replace-model to publish this one "
                         f"as its next version, or another --export-dir")
