"""ONNX files for onnxruntime: fp32 through tf2onnx, int8 through onnxruntime's quantizer.

int8 uses *dynamic* quantization (int8 weights, activation scales computed per batch at
run time): on the trained default decoder it was both more accurate and faster than static
QDQ quantization, and it needs no calibration data (docs/export-and-serving.md). Weights
get one scale per tensor, the faster, or per output channel when that misses a bound of
`export.verify` (export/pipeline.py decides), as deeper decoders do.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import tf2onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process

import keras_vae
from export.endpoints import Endpoint, named_inputs
from keras_vae.atomic import atomic_path

ONNX_OPSET = 17


def write_onnx(endpoint: Endpoint, path: str, metadata: dict[str, str]) -> None:
    """Converts the endpoint with tf2onnx; `metadata` goes into the file's properties."""
    model_proto, _ = tf2onnx.convert.from_function(
        endpoint.function, input_signature=endpoint.function.input_signature,
        opset=ONNX_OPSET)
    _set_metadata(model_proto, metadata)
    for value in (*model_proto.graph.input, *model_proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"  # the dynamic batch
    onnx.checker.check_model(model_proto)
    with atomic_path(path) as tmp:
        onnx.save(model_proto, tmp)


def write_int8(fp32_path: str, path: str, per_channel: bool = False) -> None:
    """Dynamic int8 quantization of an fp32 ONNX file; metadata is carried over."""
    with tempfile.TemporaryDirectory() as work:
        prepared = os.path.join(work, "prepared.onnx")
        quant_pre_process(fp32_path, prepared)
        quantized = os.path.join(work, "int8.onnx")
        quantize_dynamic(prepared, quantized, weight_type=QuantType.QInt8,
                         per_channel=per_channel)
        model_proto = onnx.load(quantized)
    metadata = read_metadata(fp32_path)
    scales = "per-channel" if per_channel else "per-tensor"
    metadata["quantization"] = (f"dynamic int8, {scales} weight scales "
                                f"(onnxruntime.quantization.quantize_dynamic)")
    _set_metadata(model_proto, metadata)
    onnx.checker.check_model(model_proto)
    with atomic_path(path) as tmp:
        onnx.save(model_proto, tmp)


def read_metadata(path: str) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}


def _set_metadata(model_proto: onnx.ModelProto, metadata: dict[str, str]) -> None:
    del model_proto.metadata_props[:]
    for key, value in metadata.items():
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value
    model_proto.producer_name = "keras-vae"
    model_proto.producer_version = keras_vae.__version__


def session(path: str, threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_onnx(path: str, inputs) -> dict[str, np.ndarray]:
    """`inputs`: an array, or {input name: array} (`named_inputs`)."""
    onnx_session = session(path)
    names = [o.name for o in onnx_session.get_outputs()]
    values = onnx_session.run(names, named_inputs(
        [i.name for i in onnx_session.get_inputs()], inputs))
    return dict(zip(names, values, strict=True))
