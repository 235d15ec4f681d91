"""What leaves the repository: the decoder and encoder as named, shaped tf.functions.

Every format (SavedModel, ONNX, LiteRT) is made from these functions, so all of them carry
the same input and output names:

- `vae_decoder`, the one sampling contract of every model (`VAE.generator`): `noise`
  float32 [N, Σ d_l] (every level's ε, level 1 first), `temperature` float32 [N], a
  conditional model's `label` int64 [N], and for a prior mixture (the VampPrior, a
  class's mixture) `component_draw` float32 [N] in [0, 1), which picks the component
  whose stretch of [0, 1) holds it → z = μ + temperature·σ·noise drawn from the prior
  inside the graph → `image`, the mean of p(x|z), float32 [N, H, W, C] in [0, 1], and the
  likelihood's parameters (`keras_vae.model.likelihoods`):
  - Bernoulli: `logits` [N, H, W, C] (image = sigmoid(logits));
  - discretized logistic mixture: `mixture_logits`, `locations` and `log_scales`, each
    [N, H, W, C, M] (M components; locations in pixel units, scales as logs).
- `decode_latent`, decoding a given z (an encoded image, a line between two):
  `z` float32 [N, Σ d_l] (and `label`) → the same outputs. The decoder SavedModel's second
  signature, and latent_decoder.onnx.
- `vae_encoder`: `image` float32 [N, H, W, C], pixels in [0, 1] → `z_mean` and
  `z_log_var`, both float32 [N, latent_dim].

H, W and C are the training data's (the run record's `image_shape`).

A conditional model's decoder and encoder take `label` int64 [N], the class index of each
example (the run record's `label_names` give the names). A label outside [0, classes) is
not an error: it enters the networks as the all-zero one-hot vector ("no class";
`keras_vae.model.networks.layers.OneHot`) and the prior as N(0, I), the same in every format.

A conditional model's decoder SavedModel also has the signature `label_names`: `index`
int64 [C] → `name` string [C], the class names at those indices. C, the number of
classes, is static in its signature, so a TF Serving client reads it from the model's
metadata (as it reads latent_dim from `z`), then asks for the names of 0 … C − 1.

N is dynamic everywhere (except in `label_names`). Exports made before the sampling
contract took a z for one-level models (with a prior.npz beside a VampPrior's); the
samplers tell their users to export again.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

LABEL_SPEC = tf.TensorSpec([None], tf.int64, name="label")
"""A conditional model's second input: one class index per example."""


@dataclass(frozen=True)
class Endpoint:
    """One exported model: its TF Serving name, its inputs' names and shapes (in call
    order), its named outputs."""

    name: str
    inputs: dict[str, tuple[int | None, ...]]
    output_shapes: dict[str, tuple[int | None, ...]]
    function: tf.types.experimental.GenericFunction

    def describe(self) -> dict:
        """Names and shapes for manifests (None → -1, TF Serving's notation)."""
        as_list = lambda shape: [-1 if d is None else d for d in shape]  # noqa: E731
        return {"inputs": {k: as_list(v) for k, v in self.inputs.items()},
                "outputs": {k: as_list(v) for k, v in self.output_shapes.items()}}


def named_inputs(names, inputs) -> dict:
    """`inputs` as {input name: array}: a dict as it is, or the one array of a model with
    a single input."""
    if isinstance(inputs, dict):
        return inputs
    (name,) = names
    return {name: inputs}


def _conditional(model: keras.Model) -> bool:
    return len(model.inputs) > 1


def decoder_outputs(likelihood, parameters) -> dict:
    """Every output of the exported decoder from the decoder network's parameters:
    `image` (the mean of p(x|z)) and the likelihood's named parameters."""
    return {"image": likelihood.mean(parameters), **likelihood.named_parameters(parameters)}


def decoder_endpoint(generator: keras.Model, likelihood, name: str = "vae_decoder"
                     ) -> Endpoint:
    """An exported decoder: `generator` (`VAE.generator`, or `VAE.latent_decoder` for
    `decode_latent`) with its inputs and names, and every output of `decoder_outputs`.
    `likelihood`: the model's `keras_vae.model.likelihoods` likelihood (`vae.likelihood`)."""
    specs = [tf.TensorSpec([None, *tensor.shape[1:]], tf.dtypes.as_dtype(tensor.dtype),
                           name=tensor.name) for tensor in generator.inputs]

    @tf.function(input_signature=specs)
    def decode(*tensors):
        inputs = list(tensors) if len(tensors) > 1 else tensors[0]
        return decoder_outputs(likelihood, generator(inputs, training=False))

    example = decode(*(tf.zeros([1, *spec.shape[1:]], spec.dtype) for spec in specs))
    shapes = {name: (None, *tensor.shape[1:]) for name, tensor in example.items()}
    return Endpoint(name, {spec.name: tuple(spec.shape) for spec in specs}, shapes,
                    decode)


def encoder_endpoint(encoder: keras.Model) -> Endpoint:
    latent_dim = encoder.output_shape[0][-1]
    image_shape = tuple(encoder.inputs[0].shape[1:])
    image_spec = tf.TensorSpec([None, *image_shape], tf.float32, name="image")

    def outputs(z_mean, z_log_var):
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    if _conditional(encoder):
        @tf.function(input_signature=[image_spec, LABEL_SPEC])
        def encode(image, label):
            return outputs(*encoder([image, label], training=False))
    else:
        @tf.function(input_signature=[image_spec])
        def encode(image):
            return outputs(*encoder(image, training=False))

    inputs = {"image": (None, *image_shape),
              **({"label": (None,)} if _conditional(encoder) else {})}
    return Endpoint("vae_encoder", inputs,
                    {"z_mean": (None, latent_dim), "z_log_var": (None, latent_dim)}, encode)


def sampling_feed(input_names, n: int, latent_dim: int, seed: int = 0) -> dict:
    """n rows of the sampling contract's inputs for a decoder taking `input_names`, what
    the benchmarks feed every runtime: N(0, I) noise (numpy, seeded), temperature 1,
    labels 0 and component draws uniform on [0, 1)."""
    rng = np.random.default_rng(seed)
    values = {"noise": rng.standard_normal((n, latent_dim)).astype(np.float32),
              "temperature": np.ones(n, np.float32), "label": np.zeros(n, np.int64),
              "component_draw": rng.random(n).astype(np.float32)}
    return {name: values[name] for name in input_names}


def run_keras(endpoint: Endpoint, inputs) -> dict:
    """The reference outputs every artifact is compared with; `inputs`: see
    `named_inputs`."""
    named = named_inputs(endpoint.inputs, inputs)
    outputs = endpoint.function(*(tf.constant(named[name]) for name in endpoint.inputs))
    return {name: value.numpy() for name, value in outputs.items()}


def label_names_endpoint(vae) -> Endpoint | None:
    """The `label_names` signature of a conditional model's decoder; None otherwise."""
    if not vae.config.conditional:
        return None
    names = tf.constant(list(vae.config.label_names))
    classes = vae.config.classes
    spec = tf.TensorSpec([classes], tf.int64, name="index")

    @tf.function(input_signature=[spec])
    def label_names(index):
        return {"name": tf.gather(names, index)}

    return Endpoint("label_names", {"index": (classes,)}, {"name": (classes,)}, label_names)
