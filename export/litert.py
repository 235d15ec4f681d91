"""A LiteRT (.tflite) decoder for edge devices that run LiteRT rather than onnxruntime.

Converted from the exported SavedModel (converting the tf.function directly drops the
Keras variables), with TFLite builtin ops only: no Flex / SELECT_TF_OPS, so the plain
`ai_edge_litert` interpreter runs it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from export.endpoints import named_inputs
from keras_vae.run.atomic import atomic_path
from keras_vae.run.cli import native_logs_hidden


def write_tflite(saved_model_dir: str, path: str) -> None:
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    flatbuffer = converter.convert()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(flatbuffer)


def run_tflite(path: str, inputs, threads: int = 1) -> dict[str, np.ndarray]:
    """Runs the `serving_default` signature (input and output names as exported);
    `inputs`: an array, or {input name: array} (`named_inputs`)."""
    with native_logs_hidden():  # the first call prints which delegate it created
        runner = Interpreter(model_path=path, num_threads=threads).get_signature_runner(
            "serving_default")
        return runner(**named_inputs(list(runner.get_input_details()), inputs))
