"""Mixed precision (`--precision`): the dtype policy a model is built under, and what
stays float32 whatever it is.

Keras's mixed policies keep the weights float32 and compute each layer in bfloat16 or
float16, which GPUs (and CPUs with AMX or AVX-512 BF16) run fastest. The model casts to
float32 where precision decides the numbers: the encoder's and the prior and posterior
heads' (mean, log-variance), the decoder's parameters of p(x|z), and therefore the
likelihood, the KL and the NLL; the priors' layers, the sampling and the KL term are
float32 layers. A checkpoint is loaded back in float32 (`float32_copy`), so evaluation and
every export compute what a float32 model with the same weights computes.
"""

from __future__ import annotations

import contextlib

import keras
from keras import ops

FLOAT32 = "float32"


@contextlib.contextmanager
def dtype_policy(name: str):
    """Layers built inside the block take the policy `name` (the global policy is
    restored after it)."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def as_float32(*tensors):
    """The tensors cast to float32 (a no-op under the float32 policy)."""
    return tuple(ops.cast(t, FLOAT32) for t in tensors)


def loss_scale(optimizer):
    """The factor the optimizer multiplies the loss by (float16's dynamic loss scaling),
    1.0 for any other: what gradient norms are divided by before they are compared."""
    scale = getattr(optimizer, "dynamic_scale", None)
    return 1.0 if scale is None else ops.convert_to_tensor(scale)


def float32_copy(model):
    """A model trained under a mixed policy rebuilt under float32 with its weights (they
    are float32 under every policy); a float32 model itself."""
    if model.dtype_policy.name == FLOAT32:
        return model
    with dtype_policy(FLOAT32):
        copy = type(model)(model.config)
    copy.set_weights(model.get_weights())
    return copy
