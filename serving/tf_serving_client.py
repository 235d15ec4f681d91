"""Sample images from a keras-vae decoder served by TensorFlow Serving, over REST or gRPC.

    python serving/tf_serving_client.py --n 64 --seed 0 --out grid.png            # REST
    python serving/tf_serving_client.py --protocol grpc --port 8500 --out grid.png
    python serving/tf_serving_client.py --status      # model version status, then exit
    python serving/tf_serving_client.py --label Sneaker --n 16 --out sneakers.png

REST needs the standard library, numpy and Pillow only: GET /v1/models/vae_decoder
(status), GET /v1/models/vae_decoder/metadata (signatures → latent size, class names) and
POST /v1/models/vae_decoder:predict. gRPC uses tensorflow-serving-api's
PredictionService (GetModelMetadata, Predict); that package needs TensorFlow itself (a
few seconds to load, its log lines kept off the terminal).
Every served decoder samples from the same inputs (`noise`, `temperature`, and
`label` / `component_draw` where the model has them; the prior is in its graph), drawn
here from --seed as serving/sample.py draws them. A conditional decoder draws the class
given by --label (a name, from its `label_names` signature, or an index), or one row per
class without it. A decoder exported before that contract (it takes `z`) is refused
with the command that exports it again. An
unreachable
server or a refused request ends in one line on stderr and exit code 1; a usage mistake
or a missing package in one line and exit code 2.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import urllib.error
import urllib.request

import numpy as np

if __package__:  # imported as serving.tf_serving_client
    from serving import sample, vae_cli, vae_decoder, vae_draws, vae_pictures
else:  # run as a script: sample.py and its modules lie beside this file
    import sample
    import vae_cli
    import vae_decoder
    import vae_draws
    import vae_pictures

MODEL = "vae_decoder"
SIGNATURE = "serving_default"
LABEL_NAMES_SIGNATURE = "label_names"
TIMEOUT_SECONDS = 10.0


class ServingError(Exception):
    """The server could not be reached or refused the request; reported as one line."""


class RestClient:
    """TF Serving's REST API (port 8501 by default)."""

    def __init__(self, host: str, port: int, model: str = MODEL):
        self.base = f"http://{host}:{port}/v1/models/{model}"

    def _request(self, url: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:300]
            raise ServingError(f"{url} answered HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ServingError(f"cannot reach TF Serving at {url} ({reason}); is "
                               f"tensorflow_model_server running with --rest_api_port?") from None

    def status(self) -> list[dict]:
        return self._request(self.base)["model_version_status"]

    def signatures(self) -> dict:
        """The model's signature_def map, as JSON."""
        metadata = self._request(f"{self.base}/metadata")
        return metadata["metadata"]["signature_def"]["signature_def"]

    def predict(self, signature: str, inputs: dict[str, np.ndarray], output: str
                ) -> np.ndarray:
        body = {"signature_name": signature,
                "inputs": {name: value.tolist() for name, value in inputs.items()}}
        outputs = self._request(f"{self.base}:predict", body)["outputs"]
        return np.asarray(outputs[output])


class GrpcClient:
    """TF Serving's gRPC PredictionService (port 8500 by default)."""

    def __init__(self, host: str, port: int, model: str = MODEL):
        try:
            with _native_stderr_silenced():  # TensorFlow, which the protos bring, logs
                import grpc
                import tensorflow  # noqa: F401
                from tensorflow_serving.apis import (
                    get_model_metadata_pb2,
                    predict_pb2,
                    prediction_service_pb2_grpc,
                )
        except ImportError as error:
            raise vae_cli.SampleError(f"--protocol grpc needs grpcio and tensorflow-serving-api "
                                     f"({error.name} is missing): pip install -r "
                                     f"requirements.txt, or use REST") from None

        self._grpc, self._metadata_pb2, self._predict_pb2 = (
            grpc, get_model_metadata_pb2, predict_pb2)
        self.address, self.model = f"{host}:{port}", model
        self.channel = grpc.insecure_channel(self.address)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def _call(self, method, request):
        try:
            return method(request, timeout=TIMEOUT_SECONDS)
        except self._grpc.RpcError as error:
            raise ServingError(f"TF Serving at {self.address} failed: {error.code().name} "
                               f"{error.details()}") from None

    def signatures(self) -> dict:
        """The model's signature_def map, as JSON (the form the REST API gives)."""
        from google.protobuf import json_format

        request = self._metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model
        response = self._call(self.stub.GetModelMetadata, request)
        signatures = self._metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return json_format.MessageToDict(signatures, preserving_proto_field_name=True
                                         )["signature_def"]

    def predict(self, signature: str, inputs: dict[str, np.ndarray], output: str
                ) -> np.ndarray:
        import tensorflow as tf  # already loaded: tensorflow_serving.apis imports it

        request = self._predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = self.model, signature
        request.output_filter.append(output)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        result = tf.make_ndarray(self._call(self.stub.Predict, request).outputs[output])
        return np.vectorize(bytes.decode)(result) if result.dtype == object else result


@contextlib.contextmanager
def _native_stderr_silenced():
    """Points stderr's file descriptor at /dev/null for the block: TensorFlow's native
    libraries print lines while loading, before any Python log setting applies. Python
    errors still reach stderr once the block ends."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def describe(client) -> dict:
    """What the served decoder is, from its metadata: {"latent_dim", "signatures",
    "label_names" (None for an unconditional decoder), "inputs"}; a decoder exported
    before the sampling contract is refused."""
    signatures = client.signatures()
    inputs = signatures[SIGNATURE]["inputs"]
    if "noise" not in inputs:
        raise vae_cli.SampleError(f"the served model takes {', '.join(sorted(inputs))}, not "
                                 f"the sampling contract's noise: it was exported by an "
                                 f"older keras-vae; {vae_decoder.EXPORT_AGAIN} and "
                                 f"serve the new vae_decoder")
    latent_dim = int(inputs["noise"]["tensor_shape"]["dim"][1]["size"])
    names = None
    if "label" in inputs:
        index = signatures[LABEL_NAMES_SIGNATURE]["inputs"]["index"]
        classes = int(index["tensor_shape"]["dim"][0]["size"])
        names = [str(n) for n in client.predict(
            LABEL_NAMES_SIGNATURE, {"index": np.arange(classes, dtype=np.int64)}, "name")]
    return {"latent_dim": latent_dim, "signatures": set(signatures), "label_names": names,
            "inputs": set(inputs)}


def decode(client, noise: np.ndarray, input_names, labels: np.ndarray | None = None,
           temperature: float = 1.0, component_draw: np.ndarray | None = None
           ) -> np.ndarray:
    """The served decoder's `image` for the sampling contract's inputs (`input_names`,
    the served signature's)."""
    inputs = vae_draws.decoder_feed(
        [n for n in vae_draws.CONTRACT if n in input_names], noise, labels, temperature,
        component_draw)
    return client.predict(SIGNATURE, inputs, "image").astype(np.float32)


def main(argv: list[str]) -> str:
    parser = vae_cli.ArgumentParser(prog="tf_serving_client.py",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="localhost",
                        help="TF Serving's host (default: %(default)s)")
    parser.add_argument("--protocol", choices=("rest", "grpc"), default="rest",
                        help="rest (standard library) or grpc (tensorflow-serving-api) "
                             "(default: %(default)s)")
    parser.add_argument("--port", type=vae_cli.whole_number(1, 65535), default=None,
                        help="default: 8501 for REST, 8500 for gRPC")
    parser.add_argument("--model", default=MODEL, help="served model name (default: %(default)s)")
    sample.add_sampling_flags(parser, 4096, "served_samples.png")
    parser.add_argument("--status", action="store_true",
                        help="print the model's version status (REST) and exit")
    args = parser.parse_args(argv)
    if args.status and args.protocol != "rest":
        raise vae_cli.SampleError("--status uses TF Serving's REST status endpoint; drop "
                          "--protocol grpc or point --port at the REST port")
    port = args.port or (8501 if args.protocol == "rest" else 8500)
    client = (RestClient if args.protocol == "rest" else GrpcClient)(args.host, port, args.model)
    if args.status:
        return json.dumps(client.status(), indent=2)
    vae_pictures.check_writable(args.out)
    served = describe(client)
    latent_dim, names = served["latent_dim"], served["label_names"]
    label = vae_decoder.asked_label(args.label, names, args.model)
    noise = vae_draws.seeded_noise(vae_decoder.sample_count(args.n, names, label), latent_dim,
                                args.seed)
    draws = vae_draws.component_draws(served["inputs"], len(noise), args.seed)
    images = sample.draw(lambda noise, labels, draws: decode(
        client, noise, served["inputs"], labels, args.temperature, draws),
        noise, names, label, args.out, component_draw=draws)
    return (f"{len(images)} images from {args.model} over {args.protocol} at "
            f"{args.host}:{port} (latent_dim {latent_dim}"
            f"{vae_decoder.drawn_description(names, label)}) → {args.out}")


if __name__ == "__main__":
    vae_cli.run_script(main, "tf_serving_client.py", {vae_cli.SampleError: 2, ServingError: 1})
