"""Specification of serving/tf_serving/ (configs) and serving/tf_serving_client.py.

The client is tested against tests/tf_serving_double.py, a loopback stand-in that speaks
TF Serving's REST and gRPC protocols backed by the exported SavedModels (TF Serving itself
cannot be installed here).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,  # noqa: F401  (registers wrappers.proto)
)
from PIL import Image
from tensorflow_serving.config import model_server_config_pb2

from export.saved_model import run_saved_model
from serving import tf_serving_client as client
from serving.vae_cli import SampleError
from serving.vae_draws import component_draws, seeded_noise
from serving.vae_pictures import save_picture, square_grid
from tests.tf_serving_double import TfServingDouble

CONFIG_DIR = os.path.join(os.path.dirname(client.__file__), "tf_serving")


def test_models_config_parses_as_model_server_config():
    config = model_server_config_pb2.ModelServerConfig()
    with open(os.path.join(CONFIG_DIR, "models.config")) as f:
        text_format.Parse(f.read(), config)
    models = {c.name: c for c in config.model_config_list.config}
    assert sorted(models) == ["vae_decoder", "vae_encoder"]
    for name, model in models.items():
        assert model.base_path == f"/models/{name}"  # the export layout, mounted at /models
        assert model.model_platform == "tensorflow"
        assert model.model_version_policy.latest.num_versions == 1


def _batching_parameters_class():
    """tensorflow.serving.BatchingParameters, built from its field numbers and types in
    tensorflow_serving/servables/tensorflow/session_bundle_config.proto (not shipped in
    tensorflow-serving-api)."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="batching_parameters_for_test.proto", package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"], syntax="proto3")
    message = proto.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for number, name, kind, type_name, label in [
        (1, "max_batch_size", field.TYPE_MESSAGE, ".google.protobuf.Int64Value", 1),
        (2, "batch_timeout_micros", field.TYPE_MESSAGE, ".google.protobuf.Int64Value", 1),
        (3, "max_enqueued_batches", field.TYPE_MESSAGE, ".google.protobuf.Int64Value", 1),
        (4, "num_batch_threads", field.TYPE_MESSAGE, ".google.protobuf.Int64Value", 1),
        (5, "thread_pool_name", field.TYPE_MESSAGE, ".google.protobuf.StringValue", 1),
        (6, "allowed_batch_sizes", field.TYPE_INT64, None, 3),
        (7, "pad_variable_length_inputs", field.TYPE_BOOL, None, 1),
    ]:
        message.field.add(name=name, number=number, type=kind, label=label,
                          **({"type_name": type_name} if type_name else {}))
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def test_batching_parameters_parse_and_are_consistent():
    parameters = _batching_parameters_class()()
    with open(os.path.join(CONFIG_DIR, "batching_parameters.txt")) as f:
        text_format.Parse(f.read(), parameters)
    sizes = list(parameters.allowed_batch_sizes)
    assert sizes == sorted(sizes) and sizes[-1] == parameters.max_batch_size.value
    assert parameters.num_batch_threads.value >= 1
    assert 0 < parameters.batch_timeout_micros.value <= 10_000


@pytest.fixture(scope="module")
def server(small_export):
    base = small_export["export_dir"]
    with TfServingDouble({name: os.path.join(base, name)
                          for name in ("vae_decoder", "vae_encoder")}) as double:
        yield double


def test_rest_status_and_metadata(server):
    rest = client.RestClient("127.0.0.1", server.rest_port)
    assert rest.status() == [{"version": "1", "state": "AVAILABLE",
                              "status": {"error_code": "OK", "error_message": ""}}]
    assert client.describe(rest) == {"latent_dim": 6,
                                     "signatures": {"serving_default", "decode_latent"},
                                     "label_names": None, "inputs": {"noise", "temperature"}}


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_decoding_through_serving_equals_the_saved_model(server, small_export, protocol):
    port = server.rest_port if protocol == "rest" else server.grpc_port
    remote = (client.RestClient if protocol == "rest" else client.GrpcClient)("127.0.0.1", port)
    assert client.describe(remote)["latent_dim"] == 6
    noise, inputs = seeded_noise(5, 6, seed=2), {"noise", "temperature"}
    local = run_saved_model(small_export["paths"]["decoder_saved_model"], {
        "noise": noise, "temperature": np.full(5, 0.7, np.float32)})["image"]
    np.testing.assert_allclose(client.decode(remote, noise, inputs, temperature=0.7), local,
                               atol=1e-6)


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_client_command_writes_a_grid(server, tmp_path, protocol):
    port = server.rest_port if protocol == "rest" else server.grpc_port
    out = tmp_path / f"{protocol}.png"
    message = client.main(["--host", "127.0.0.1", "--protocol", protocol, "--port", str(port),
                           "--n", "9", "--out", str(out)])
    assert f"9 images from vae_decoder over {protocol}" in message
    assert Image.open(out).size == (2 * (3 * 30 - 2),) * 2


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_unreachable_server_is_one_clear_error(protocol, tmp_path):
    with pytest.raises(client.ServingError, match="127.0.0.1") as error:
        client.main(["--host", "127.0.0.1", "--protocol", protocol, "--port",
                     str(_closed_port()), "--out", str(tmp_path / "x.png")])
    assert "\n" not in str(error.value)
    assert not (tmp_path / "x.png").exists()


def test_unknown_model_name_is_reported(server, tmp_path):
    with pytest.raises(client.ServingError, match="HTTP 404"):
        client.main(["--host", "127.0.0.1", "--port", str(server.rest_port),
                     "--model", "nope", "--out", str(tmp_path / "x.png")])


def test_status_over_grpc_is_refused_as_usage():
    with pytest.raises(SampleError, match="--status uses TF Serving's REST"):
        client.main(["--protocol", "grpc", "--status"])


@pytest.fixture(scope="module")
def vamp_server(vamp_export):
    base = vamp_export["export_dir"]
    with TfServingDouble({"vae_decoder": os.path.join(base, "vae_decoder")}) as double:
        yield double


def _served_equals_local(server, decoder: str, tmp_path, protocol: str) -> None:
    """The client's picture for seed 5 at temperature 0.7 equals the SavedModel's own for
    the seed's noise and component draws."""
    port = server.rest_port if protocol == "rest" else server.grpc_port
    client.main(["--host", "127.0.0.1", "--protocol", protocol, "--port", str(port),
                 "--n", "9", "--seed", "5", "--temperature", "0.7",
                 "--out", str(tmp_path / "served.png")])
    inputs = {"noise": seeded_noise(9, 6, 5), "temperature": np.full(9, 0.7, np.float32),
              "component_draw": component_draws({"component_draw"}, 9, 5)}
    local = run_saved_model(decoder, inputs)["image"]
    save_picture(square_grid(local), str(tmp_path / "local.png"))
    served, expected = (np.asarray(Image.open(tmp_path / name), np.int16)
                        for name in ("served.png", "local.png"))
    assert np.abs(served - expected).max() <= 1  # 8-bit rounding of 1e-6 differences


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_a_served_vamp_decoder_takes_the_seeds_component_draws(vamp_server, vamp_export,
                                                               tmp_path, protocol):
    """No prior file: the decoder holds its mixture, and the client sends the seed's noise,
    the temperature and the component draws."""
    _served_equals_local(vamp_server, vamp_export["paths"]["decoder_saved_model"], tmp_path,
                         protocol)


@pytest.fixture(scope="module")
def vamp_hierarchy(tmp_path_factory):
    """A hierarchy of 4 and 2 whose top level has a VampPrior of 6, exported and served."""
    import keras

    from export.pipeline import export_model
    from keras_vae.config import ModelConfig, TrainConfig
    from keras_vae.model.vae import VAE

    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(likelihood="bernoulli", latent_dim=(4, 2), hidden_dims=(256,),
                          prior="vamp", pseudo_inputs=6))
    export_dir = str(tmp_path_factory.mktemp("vamp_hierarchy"))
    exported = export_model(vae, export_dir, TrainConfig(model=vae.config,
                                                         dataset="binarized_mnist"))
    with TfServingDouble({"vae_decoder": os.path.join(export_dir, "vae_decoder")}) as double:
        yield {"server": double, "decoder": exported["paths"]["decoder_saved_model"]}


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_a_served_vamp_hierarchy_takes_the_seeds_component_draws(vamp_hierarchy, tmp_path,
                                                                 protocol):
    _served_equals_local(vamp_hierarchy["server"], vamp_hierarchy["decoder"], tmp_path,
                         protocol)


def test_a_served_decoder_exported_before_the_contract_is_refused(small_export, tmp_path):
    """A SavedModel whose serving_default takes z, as exports before the sampling contract
    wrote them: one line that says to export again; no picture."""
    from export.endpoints import decoder_endpoint
    from export.saved_model import write_saved_model

    vae = small_export["vae"]
    old = decoder_endpoint(vae.latent_decoder(), vae.likelihood)
    write_saved_model(old, vae.latent_decoder(), str(tmp_path / "vae_decoder" / "1"))
    with TfServingDouble({"vae_decoder": str(tmp_path / "vae_decoder")}) as double:
        with pytest.raises(SampleError, match="exported by an older keras-vae; export it "
                                              "again with `python -m export RUN`") as error:
            client.main(["--host", "127.0.0.1", "--port", str(double.rest_port),
                         "--out", str(tmp_path / "x.png")])
    assert "\n" not in str(error.value) and not (tmp_path / "x.png").exists()


def _run_without(module: str, args: list[str]) -> subprocess.CompletedProcess:
    """The client as a script, in a Python where `module` cannot be imported."""
    code = (f"import runpy, sys; sys.modules[{module!r}] = None; "
            f"sys.argv = ['tf_serving_client.py', *{args!r}]; "
            f"runpy.run_path({client.__file__!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(client.__file__))


def test_rest_needs_neither_onnxruntime_nor_grpc(server, tmp_path):
    for missing in ("onnxruntime", "grpc"):
        out = tmp_path / f"without-{missing}.png"
        done = _run_without(missing, ["--host", "127.0.0.1", "--port", str(server.rest_port),
                                      "--n", "4", "--out", str(out)])
        assert done.returncode == 0, done.stderr
        assert Image.open(out).size == (2 * (2 * 30 - 2),) * 2


def test_grpc_without_its_packages_is_one_line_naming_them(tmp_path):
    done = _run_without("grpc", ["--protocol", "grpc", "--out", str(tmp_path / "x.png")])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "needs grpcio and tensorflow-serving-api" in (
        done.stderr)


def test_grpc_from_the_command_line_keeps_tensorflow_quiet(server, tmp_path):
    """gRPC loads TensorFlow (tensorflow-serving-api needs it); none of its log lines
    reach the terminal, and the picture is written."""
    out = tmp_path / "grpc.png"
    done = subprocess.run(
        [sys.executable, "tf_serving_client.py", "--protocol", "grpc", "--host", "127.0.0.1",
         "--port", str(server.grpc_port), "--n", "4", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=os.path.dirname(client.__file__),
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and "4 images from vae_decoder over grpc" in done.stdout
    assert out.exists()
