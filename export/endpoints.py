"""What leaves the repository: the decoder and encoder as named, shaped tf.functions.

Every format (SavedModel, ONNX, LiteRT) is made from these functions, so all of them carry
the same input and output names:

- `vae_decoder`: `z` float32 [N, latent_dim] → `image`, the mean of p(x|z), float32
  [N, H, W, C] in [0, 1], and the likelihood's parameters (`keras_vae.pixels`):
  - Bernoulli: `logits` [N, H, W, C] (image = sigmoid(logits));
  - discretized logistic mixture: `mixture_logits`, `locations` and `log_scales`, each
    [N, H, W, C, M] (M components; locations in pixel units, scales as logs).
- `vae_encoder`: `image` float32 [N, H, W, C], pixels in [0, 1] → `z_mean` and
  `z_log_var`, both float32 [N, latent_dim].

H, W and C are the training data's (the run record's `image_shape`).

N is dynamic everywhere. A VampPrior model's decoder SavedModel also has the signature
`vamp_prior`: `index` int64 [N] → `means`, `log_vars` float32 [N, latent_dim], the
mixture's components at those indices (an index outside [0, K) is an error). Its presence
tells a TF Serving client that z must come from that mixture, not from N(0, I).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf


@dataclass(frozen=True)
class Endpoint:
    """One exported model: its TF Serving name, its single input, its named outputs."""

    name: str
    input_name: str
    input_shape: tuple[int | None, ...]
    output_shapes: dict[str, tuple[int | None, ...]]
    function: tf.types.experimental.GenericFunction

    def describe(self) -> dict:
        """Names and shapes for manifests (None → -1, TF Serving's notation)."""
        as_list = lambda shape: [-1 if d is None else d for d in shape]  # noqa: E731
        return {"inputs": {self.input_name: as_list(self.input_shape)},
                "outputs": {k: as_list(v) for k, v in self.output_shapes.items()}}


def decoder_endpoint(decoder: keras.Model, likelihood) -> Endpoint:
    """`likelihood`: the model's `keras_vae.pixels` likelihood (`vae.likelihood`)."""
    latent_dim = decoder.input_shape[-1]
    spec = tf.TensorSpec([None, latent_dim], tf.float32, name="z")

    @tf.function(input_signature=[spec])
    def decode(z):
        parameters = decoder(z, training=False)
        return {"image": likelihood.mean(parameters),
                **likelihood.named_parameters(parameters)}

    shapes = {name: (None, *tensor.shape[1:]) for name, tensor in
              decode(tf.zeros([1, latent_dim])).items()}
    return Endpoint("vae_decoder", "z", (None, latent_dim), shapes, decode)


def encoder_endpoint(encoder: keras.Model) -> Endpoint:
    latent_dim = encoder.output_shape[0][-1]
    image_shape = tuple(encoder.input_shape[1:])
    spec = tf.TensorSpec([None, *image_shape], tf.float32, name="image")

    @tf.function(input_signature=[spec])
    def encode(image):
        z_mean, z_log_var = encoder(image, training=False)
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    return Endpoint("vae_encoder", "image", (None, *image_shape),
                    {"z_mean": (None, latent_dim), "z_log_var": (None, latent_dim)}, encode)


def run_keras(endpoint: Endpoint, inputs) -> dict:
    """The reference outputs every artifact is compared with."""
    outputs = endpoint.function(tf.constant(inputs))
    return {name: value.numpy() for name, value in outputs.items()}


def prior_endpoint(vae) -> Endpoint | None:
    """The `vamp_prior` signature of a VampPrior model's decoder; None for N(0, I)."""
    if vae.pseudo_inputs is None:
        return None
    latent_dim = vae.config.latent_dim
    means, log_vars = (tf.constant(t) for t in vae.prior())
    spec = tf.TensorSpec([None], tf.int64, name="index")

    @tf.function(input_signature=[spec])
    def components(index):
        return {"means": tf.gather(means, index), "log_vars": tf.gather(log_vars, index)}

    return Endpoint("vamp_prior", "index", (None,),
                    {"means": (None, latent_dim), "log_vars": (None, latent_dim)}, components)
