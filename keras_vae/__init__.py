"""keras-vae: a variational autoencoder in Keras 3 that trains in one command and ships.

From Python (docs/python.md):

    import keras_vae
    vae = keras_vae.load("runs/my-run")        # a TrainedVAE
    images = vae.sample(16, seed=0)            # float32 [16, H, W, C] in [0, 1]
    z_mean, z_log_var = vae.encode(images)
    log_p = vae.log_likelihood(images, k=1000)  # nats per image

`keras_vae.VAE` is the Keras model (`compile`, `fit`, `keras.models.load_model` of a run's
`best.keras` after `import keras_vae`), `ModelConfig` and `TrainConfig` its settings,
`train(config)` the command's training procedure, `TrainedVAE(model)` the numpy methods
on a model you trained yourself.

Commands: `python -m keras_vae.train`, `.evaluate`, `.plot`, `.bench`; the export is the
sibling package `export/`, the consumers are in `serving/`.
"""

import sys

__version__ = "0.1.0"

PUBLIC = {
    "load": "keras_vae.trained", "train": "keras_vae.trained",
    "TrainedVAE": "keras_vae.trained", "VAE": "keras_vae.model",
    "HierarchicalVAE": "keras_vae.hierarchy", "make_vae": "keras_vae.hierarchy",
    "ModelConfig": "keras_vae.config", "TrainConfig": "keras_vae.config",
}
"""Each public name and the module that defines it, imported when first asked for."""

__all__ = sorted(PUBLIC)


def __getattr__(name: str):
    if name not in PUBLIC:
        raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(PUBLIC[name]), name)


def __dir__():
    return sorted([*globals(), *PUBLIC])


# Code that imports keras_vae gets the model classes registered with Keras, so that
# `keras.models.load_model` reads any run's best.keras. A command (`python -m
# keras_vae.train`, `python -m export`) is imported while sys.argv[0] is "-m" (Python's
# documented behaviour); it checks its flags before TensorFlow loads, and registers the
# classes itself when it loads a model. TensorFlow's C++ start-up lines stay hidden, as
# in the commands (TF_CPP_MIN_LOG_LEVEL, if you set it, wins).
if sys.argv[:1] != ["-m"]:
    from keras_vae.cli import load_tensorflow

    load_tensorflow()
    import keras_vae.hierarchy  # noqa: F401, E402
