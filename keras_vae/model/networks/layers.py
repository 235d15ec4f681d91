"""Layers that every network family builds from."""

from __future__ import annotations

import keras
from keras import layers, ops


def fan_in_uniform():
    """Kernels drawn from U(±1/√fan_in), PyTorch's default for linear and conv layers: on
    this VAE it ends training lower than Keras's Glorot default (docs/results.md)."""
    return keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")


def dense(units: int, name: str, activation: str | None = None) -> layers.Dense:
    return layers.Dense(units, activation=activation, name=name,
                        kernel_initializer=fan_in_uniform())


def conv(filters: int, name: str, *, strides: int = 1,
         activation: str | None = "relu") -> layers.Conv2D:
    """A 3×3 'same' convolution with the same initializer."""
    return layers.Conv2D(filters, 3, strides=strides, padding="same", activation=activation,
                         name=name, kernel_initializer=fan_in_uniform())


def hidden_layer(h, width: int, name: str, gated: bool):
    """One hidden layer: ReLU(W·h + b), or with `gated` (W·h + b) ⊙ sigmoid(V·h + c).

    The gated form is the GatedDense unit of Dauphin et al. (2017) that Tomczak & Welling
    use in every VampPrior model: the sigmoid gate lets each unit scale its own output,
    at twice the weights of a plain layer. Both are ordinary Dense layers, so exports
    need nothing new.
    """
    if not gated:
        return dense(width, name, "relu")(h)
    linear = dense(width, f"{name}_linear")(h)
    gate = dense(width, f"{name}_gate", "sigmoid")(h)
    return layers.Multiply(name=name)([linear, gate])


@keras.saving.register_keras_serializable(package="keras_vae")
class OneHot(layers.Layer):
    """Labels int [N] → one-hot float32 [N, classes]; a label outside [0, classes) → zeros.

    Built from Equal and Cast rather than `one_hot`, so that every exported format does the
    same with an out-of-range label: ONNX's OneHot counts negative labels from the end,
    where TensorFlow's gives zeros. Zeros make the label's term vanish from every dense
    layer that takes it: the network then sees "no class".

    Args:
        classes: how many labels there are.
    """

    def __init__(self, classes: int, **kwargs):
        super().__init__(**kwargs)
        self.classes = classes

    def call(self, labels):
        labels = ops.expand_dims(ops.cast(labels, "int64"), -1)
        return ops.cast(ops.equal(labels, ops.arange(self.classes, dtype="int64")),
                        self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.classes)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes}
