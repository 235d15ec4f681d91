"""The convolutional family: stride-2 convolutions before the dense layers, and
convolve-and-upsample steps after them, as many as the image size asks for."""

from __future__ import annotations

import math

from keras import layers

from keras_vae.model.networks.layers import conv, dense

CONV_FILTERS = (32, 64, 128, 256)
"""Channels of the encoder's stride-2 convolutions, one per stage (see `conv_stages`)."""

CONV_SMALLEST_SIDE = 8
"""The encoder halves the image until its shorter side is at most this: 28 → 14 → 7,
32 → 16 → 8, 64 → 32 → 16 → 8; at least one stage, at most len(CONV_FILTERS)."""


def conv_stages(image_shape) -> int:
    """How many stride-2 convolutions the encoder uses for this image size."""
    side, stages = min(image_shape[:2]), 0
    while stages < len(CONV_FILTERS) and (stages == 0 or side > CONV_SMALLEST_SIDE):
        side, stages = -(-side // 2), stages + 1
    return stages


class ConvFamily:
    gated_hidden_units = False

    def image_features(self, config, images):
        h = images
        for i in range(conv_stages(config.image_shape)):
            h = conv(CONV_FILTERS[i], f"encoder_conv_{i}", strides=2)(h)
        return h

    def pixel_parameters(self, config, h, outputs_per_pixel: int):
        """Dense to the smallest grid, then per stage a convolution and a 2× upsampling,
        cropped to the image where odd sizes were rounded up, and a last convolution to
        the parameters. Convolve-and-upsample rather than transposed convolutions: no
        checkerboard artifacts, and onnxruntime's dynamic int8 quantizes Conv but not
        ConvTranspose. Bilinear, because Keras's nearest upsampling loses the static shape
        that the LiteRT converter needs."""
        height, width, _ = config.image_shape
        stages = conv_stages(config.image_shape)
        grid = (-(-height // 2 ** stages), -(-width // 2 ** stages), CONV_FILTERS[stages - 1])
        h = dense(math.prod(grid), "decoder_to_grid", "relu")(h)
        h = layers.Reshape(grid)(h)
        for i in reversed(range(stages)):
            h = conv(CONV_FILTERS[i], f"decoder_conv_{stages - 1 - i}")(h)
            h = layers.UpSampling2D(2, interpolation="bilinear",
                                    name=f"decoder_upsample_{stages - 1 - i}")(h)
        excess = (h.shape[1] - height, h.shape[2] - width)  # odd sizes were rounded up
        if any(excess):
            h = layers.Cropping2D(((0, excess[0]), (0, excess[1])), name="crop")(h)
        return conv(outputs_per_pixel, "parameters", activation=None)(h)


CONV = ConvFamily()
