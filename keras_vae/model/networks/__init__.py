"""The encoder and decoder networks, by family: the one list of `--arch` choices.

Every family shares one shape. The encoder reads the image with the family's own layers
(`image_features`), flattens, appends a conditional model's label, and runs the dense
hidden layers of `--hidden-dims` to the two heads z_mean and z_log_var. The decoder
mirrors it: z (and the label) through the hidden layers reversed, then the family's own
layers to the likelihood's parameters for every pixel (`pixel_parameters`). See
`keras_vae.model.networks.stack`.

Adding a family: a module in this package with an object of the `NetworkFamily`
interface, and an entry in `NETWORKS`. Whatever it builds must convert to every export
format (`export/`): TF Serving's SavedModel, ONNX through tf2onnx with onnxruntime's
dynamic int8, and LiteRT with builtin ops only. In practice: Dense, Conv2D, bilinear
UpSampling2D, Reshape, Cropping2D and elementwise ops convert; transposed convolutions
are not quantized by dynamic int8, nearest upsampling loses the static shape LiteRT
needs, and batch normalization must fold into the weights at export. The export tests
run every registered family.

This module imports no TensorFlow (the run record reads the names and facts here).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol


class NetworkFamily(Protocol):
    """The family-specific ends of the encoder and decoder, as Keras functional layers."""

    gated_hidden_units: bool
    """Whether the dense hidden layers are gated, (W·h + b) ⊙ sigmoid(V·h + c)."""

    def image_features(self, config, images):
        """images [N, H, W, C] (a Keras input) → what the dense layers read, any shape."""

    def pixel_parameters(self, config, h, outputs_per_pixel: int):
        """The last hidden layer [N, width] → parameters [N, H, W, outputs_per_pixel]
        (C·P: the likelihood's P per channel)."""


@dataclass(frozen=True)
class NetworkEntry:
    """A registered family: where it lives ("module:attribute") and whether compiling its
    training step with XLA speeds it up on a CPU (measured: docs/performance.md)."""

    location: str
    xla_speeds_training: bool = True


NETWORKS = {
    "mlp": NetworkEntry("keras_vae.model.networks.dense:MLP"),
    "gated": NetworkEntry("keras_vae.model.networks.dense:GATED"),
    "conv": NetworkEntry("keras_vae.model.networks.conv:CONV", xla_speeds_training=False),
}


def network_family(name: str) -> NetworkFamily:
    module, attribute = NETWORKS[name].location.split(":")
    return getattr(importlib.import_module(module), attribute)
