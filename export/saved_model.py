"""SavedModels in the layout TensorFlow Serving polls: BASE/<model name>/<version>/.

TF Serving watches BASE/<model name> and loads the highest integer version it finds. A new
export therefore takes a new version number and never touches an existing one, and each
version directory is written under a name TF Serving ignores (not an integer) and renamed
into place in one step, so the server never sees half a model.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from export.endpoints import Endpoint


def existing_versions(model_dir: str) -> list[int]:
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if name.isdigit())


def next_version(base_dir: str, model_names: list[str]) -> int:
    """One version number for all models of an export, above every existing one."""
    return 1 + max((v for name in model_names
                    for v in existing_versions(os.path.join(base_dir, name))), default=0)


def write_saved_model(endpoint: Endpoint, resource: keras.Model, path: str,
                      extra: Endpoint | None = None) -> None:
    """Writes a SavedModel whose `serving_default` signature is `endpoint.function`, plus
    `extra` as a signature under its own name (TF Serving serves every signature)."""
    archive = keras.export.ExportArchive()
    archive.track(resource)
    archive.add_endpoint("serving_default", endpoint.function)
    if extra is not None:
        archive.add_endpoint(extra.name, extra.function)
    archive.write_out(path, verbose=False)


def publish_version(staged: str, base_dir: str, model_name: str, version: int) -> str:
    """Moves a staged SavedModel to BASE/<model_name>/<version> in one rename.

    Raises:
        FileExistsError: that version already exists; exports never overwrite one.
    """
    model_dir = os.path.join(base_dir, model_name)
    final = os.path.join(model_dir, str(version))
    os.makedirs(model_dir, exist_ok=True)
    if os.path.exists(final):
        raise FileExistsError(f"{final} already exists; exports never overwrite a version")
    os.rename(staged, final)
    return final


def run_saved_model(path: str, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Calls the `serving_default` signature, as TF Serving does."""
    signature = tf.saved_model.load(path).signatures["serving_default"]
    input_name = next(iter(signature.structured_input_signature[1]))
    outputs = signature(**{input_name: tf.constant(inputs)})
    return {name: value.numpy() for name, value in outputs.items()}
