"""ONNX files for onnxruntime: fp32 through tf2onnx, int8 through onnxruntime's quantizer.

int8 uses *dynamic* quantization (int8 weights, activation scales computed per batch at
run time): on the trained default decoder it was both more accurate and faster than static
QDQ quantization, and it needs no calibration data (docs/export-and-serving.md). Weights
get one scale per tensor, the faster, or per output channel when that misses a bound of
`export.verify` (export/pipeline.py decides), as deeper decoders do. A one-hot label
times a table (a conditional model's class prior) stays float: it is a lookup, whose
rounding would move a class's prior itself (`table_lookups`).
"""

from __future__ import annotations

import contextlib
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
from keras_vae.run.atomic import atomic_path

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


@contextlib.contextmanager
def int8_preprocessed(fp32_path: str):
    """The fp32 ONNX file prepared for quantization (onnxruntime's shape inference and
    graph optimization), in a temporary directory while the context lasts: every scheme
    `write_int8` tries quantizes the same preparation, which is its slowest part."""
    with tempfile.TemporaryDirectory() as work:
        prepared = os.path.join(work, "prepared.onnx")
        # auto_merge: bilinear upsampling (Resize) gives the batch dimension the name
        # floor(1.0·N), which shape inference cannot otherwise equate with N. Where its
        # symbolic shape inference stops short, onnxruntime writes what it has to the
        # working directory (and goes on): there, the temporary one, not the user's.
        with contextlib.chdir(work):
            quant_pre_process(os.path.abspath(fp32_path), prepared, auto_merge=True)
        yield prepared


def write_int8(fp32_path: str, path: str, per_channel: bool = False,
               float_convolutions: bool = False, prepared: str | None = None) -> None:
    """Dynamic int8 quantization of an fp32 ONNX file; metadata is carried over. With
    `float_convolutions` the convolutions stay fp32 and only the dense layers' MatMuls
    are quantized (see `convolutions`). `prepared`: the file's `int8_preprocessed`
    form, if made already."""
    if prepared is None:
        with int8_preprocessed(fp32_path) as prepared:
            return write_int8(fp32_path, path, per_channel, float_convolutions, prepared)
    with tempfile.TemporaryDirectory() as work:
        quantized = os.path.join(work, "int8.onnx")
        prepared_proto = onnx.load(prepared)
        kept_float = table_lookups(prepared_proto)
        if float_convolutions:
            kept_float += convolutions(prepared_proto)
        quantize_dynamic(prepared, quantized, weight_type=QuantType.QInt8,
                         per_channel=per_channel, nodes_to_exclude=kept_float)
        model_proto = onnx.load(quantized)
    metadata = read_metadata(fp32_path)
    scales = "per-channel" if per_channel else "per-tensor"
    convs = ", convolutions kept fp32" if float_convolutions else ""
    metadata["quantization"] = (f"dynamic int8, {scales} weight scales{convs} "
                                f"(onnxruntime.quantization.quantize_dynamic)")
    _set_metadata(model_proto, metadata)
    onnx.checker.check_model(model_proto)
    with atomic_path(path) as tmp:
        onnx.save(model_proto, tmp)


def table_lookups(model_proto: onnx.ModelProto) -> list[str]:
    """Names of the MatMuls whose first input is a one-hot (`OneHot`: Equal, then Cast):
    lookups in a table such as the class prior's means, log-variances and mixture
    weights. int8 would round the looked-up values, and a mixture's weights pick a
    component by comparison, so rounded weights draw another component for some noise:
    measured on a class prior fitted after training, the int8 image's p99 difference was
    0.31 against a bound of 0.08. The tables are small (classes rows), so little is lost."""
    made_by = {output: node for node in model_proto.graph.node for output in node.output}

    def is_one_hot(name: str) -> bool:
        node = made_by.get(name)
        return (node is not None and node.op_type == "Cast"
                and getattr(made_by.get(node.input[0]), "op_type", None) == "Equal")

    return [node.name for node in model_proto.graph.node
            if node.op_type == "MatMul" and is_one_hot(node.input[0])]


def convolutions(model_proto: onnx.ModelProto) -> list[str]:
    """Names of the Conv nodes (`--arch conv`). Dynamic int8 turns them into ConvInteger,
    whose activations get one scale per batch: on the convolutional MNIST hierarchy
    (2026-11-30) that put the int8 logits' p99 difference at 0.35-0.38 (bound 0.3) with
    either weight scale, against 0.13-0.18 with the convolutions kept fp32, at 29 % of
    fp32's size, as most weights are in the dense layers."""
    return [node.name for node in model_proto.graph.node if node.op_type == "Conv"]


def convolution_weight_share(path: str) -> float:
    """The share of the file's weights (initializer elements) that its Conv nodes read:
    0.99 for a spatial decoder. Kept fp32, they alone keep an int8 file at least this
    share of the fp32 one's size."""
    model_proto = onnx.load(path)
    sizes = {t.name: int(np.prod(t.dims)) for t in model_proto.graph.initializer}
    read = {name for node in model_proto.graph.node if node.op_type == "Conv"
            for name in node.input if name in sizes}
    return sum(sizes[name] for name in read) / max(1, sum(sizes.values()))


def has_convolutions(path: str) -> bool:
    return bool(convolutions(onnx.load(path, load_external_data=False)))


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


def onnx_function(path: str, threads: int | None = None):
    """The ONNX file at `path` in one onnxruntime session, as a function of `inputs` (an
    array, or {input name: array}: `named_inputs`) → {output name: numpy array}. A new
    session for every batch kept about 665 MB each alive beside TensorFlow (a 64×64
    spatial scorer, 16 batches: 13.5 GB)."""
    onnx_session = session(path, threads)
    names = [o.name for o in onnx_session.get_outputs()]
    input_names = [i.name for i in onnx_session.get_inputs()]

    def run(inputs) -> dict[str, np.ndarray]:
        values = onnx_session.run(names, named_inputs(input_names, inputs))
        return dict(zip(names, values, strict=True))

    return run


def run_onnx(path: str, inputs, rows_per_call: int | None = None) -> dict[str, np.ndarray]:
    """`inputs` in one call, or with `rows_per_call` ({name: array} inputs only) that many
    rows at a time, so that a large decoder's feature maps for every row are never held
    at once (256 draws of a 64×64 spatial decoder took 2 GB in one call)."""
    run = onnx_function(path)
    if rows_per_call is None:
        return run(inputs)
    rows = len(next(iter(inputs.values())))
    parts = [run({name: value[start:start + rows_per_call] for name, value in inputs.items()})
             for start in range(0, rows, rows_per_call)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
