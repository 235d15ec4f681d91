"""TEST DOUBLE of TensorFlow Serving: its REST and gRPC protocols on 127.0.0.1, backed
by exported SavedModels. It is not TF Serving (whose server cannot be installed here); it
answers the same endpoints with the same message formats so that the client can be tested
for real:

- REST: GET /v1/models/<name> (status), GET /v1/models/<name>/metadata (signature_def),
  POST /v1/models/<name>:predict with {"signature_name", "inputs": {...}} (columnar).
- gRPC: tensorflow.serving.PredictionService GetModelMetadata and Predict.

Metadata lists every signature of the SavedModel, as TF Serving's does; each predict call
runs the signature it names (`serving_default` when it names none), as TF Serving does.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc


class ServedModel:
    """One model name → its newest version directory, loaded like TF Serving would."""

    def __init__(self, base_path: str):
        self.version = max(int(v) for v in os.listdir(base_path) if v.isdigit())
        path = os.path.join(base_path, str(self.version))
        self.signatures = tf.saved_model.load(path).signatures
        saved_model = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            saved_model.ParseFromString(f.read())
        self.signature_defs = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in saved_model.meta_graphs[0].signature_def.items():
            if name != "__saved_model_init_op":  # TF Serving does not list it either
                self.signature_defs.signature_def[name].CopyFrom(signature_def)

    def predict(self, inputs: dict[str, np.ndarray], signature: str = "") -> dict:
        function = self.signatures[signature or "serving_default"]
        specs = function.structured_input_signature[1]
        outputs = function(**{k: tf.constant(v, specs[k].dtype) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}


class _RestHandler(BaseHTTPRequestHandler):
    models: dict[str, ServedModel] = {}

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, code: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _model(self, name: str) -> ServedModel | None:
        model = self.models.get(name)
        if model is None:
            self._send(404, {"error": f"Servable not found for request: Latest({name})"})
        return model

    def do_GET(self):
        parts = self.path.strip("/").split("/")  # v1 models <name> [metadata]
        model = self._model(parts[2]) if len(parts) >= 3 else None
        if model is None:
            return
        if parts[3:] == ["metadata"]:
            self._send(200, {
                "model_spec": {"name": parts[2], "signature_name": "",
                               "version": str(model.version)},
                "metadata": {"signature_def": json_format.MessageToDict(
                    model.signature_defs, preserving_proto_field_name=True)}})
        else:
            self._send(200, {"model_version_status": [{
                "version": str(model.version), "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""}}]})

    def do_POST(self):
        name, _, verb = self.path.strip("/").split("/")[2].partition(":")
        model = self._model(name)
        if model is None:
            return
        if verb != "predict":
            self._send(400, {"error": f"unsupported verb {verb}"})
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        outputs = model.predict({k: np.asarray(v) for k, v in body["inputs"].items()},
                                body.get("signature_name", ""))
        self._send(200, {"outputs": {k: _json_value(v) for k, v in outputs.items()}})


def _json_value(value: np.ndarray):
    """A tensor as TF Serving's REST API writes it: nested lists, strings as UTF-8 text."""
    if value.dtype.kind in "OS":
        return np.vectorize(lambda b: b.decode(), otypes=[object])(value).tolist()
    return value.tolist()


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, models: dict[str, ServedModel]):
        self.models = models

    def _model(self, name, context) -> ServedModel:
        if name not in self.models:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Servable not found for request: Latest({name})")
        return self.models[name]

    def GetModelMetadata(self, request, context):
        model = self._model(request.model_spec.name, context)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(model.signature_defs)
        return response

    def Predict(self, request, context):
        model = self._model(request.model_spec.name, context)
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        outputs = model.predict(inputs, request.model_spec.signature_name)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        for name, value in outputs.items():
            if not request.output_filter or name in request.output_filter:
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response


class TfServingDouble:
    """Context manager: REST and gRPC servers on free loopback ports.

    Example:
        with TfServingDouble({"vae_decoder": "export/vae_decoder"}) as server:
            server.rest_port, server.grpc_port
    """

    def __init__(self, base_paths: dict[str, str]):
        self.models = {name: ServedModel(path) for name, path in base_paths.items()}

    def __enter__(self) -> TfServingDouble:
        handler = type("Handler", (_RestHandler,), {"models": self.models})
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.rest_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self.models), self.grpc)
        self.grpc_port = self.grpc.add_insecure_port("127.0.0.1:0")
        self.grpc.start()
        return self

    def __exit__(self, *exc) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.grpc.stop(grace=None)
