"""Dense networks: the image flattened into the hidden layers, and a dense layer out to
every pixel's parameters. `mlp` has ReLU hidden units, `gated` gated ones (the units of
Tomczak & Welling's VampPrior models)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from keras import layers

from keras_vae.model.networks.layers import dense


@dataclass(frozen=True)
class DenseFamily:
    gated_hidden_units: bool

    def image_features(self, config, images):
        return images

    def pixel_parameters(self, config, h, outputs_per_pixel: int):
        height, width, _ = config.image_shape
        flat = dense(math.prod((height, width, outputs_per_pixel)), "pixel_parameters")(h)
        return layers.Reshape((height, width, outputs_per_pixel), name="parameters")(flat)


MLP = DenseFamily(gated_hidden_units=False)
GATED = DenseFamily(gated_hidden_units=True)
