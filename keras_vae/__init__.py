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

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

PUBLIC = {
    "load": "keras_vae.trained", "train": "keras_vae.trained",
    "TrainedVAE": "keras_vae.trained", "VAE": "keras_vae.model.vae",
    "ModelConfig": "keras_vae.config", "TrainConfig": "keras_vae.config",
}
"""Each public name and the module that defines it, imported when first asked for."""

__all__ = sorted(PUBLIC)


def __getattr__(name: str):
    if name not in PUBLIC:
        raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")
    return getattr(importlib.import_module(PUBLIC[name]), name)


def __dir__():
    return sorted([*globals(), *PUBLIC])


def _register_model_classes() -> None:
    import keras_vae.model.vae  # noqa: F401  (registers the model class with Keras)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Registers the model classes as soon as Keras has been imported, so that
    `keras.models.load_model` reads any run's best.keras after `import keras_vae`, while
    `import keras_vae` itself stays light: a command checks its flags before TensorFlow
    loads, and a script that imports only `keras_vae.config` never loads it."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        # TensorFlow asks for keras's spec without importing it (importlib.util.find_spec)
        # before it imports it: the finder stays until keras has really run.
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            run_module = spec.loader.exec_module

            def exec_module(module):
                run_module(module)
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                _register_model_classes()

            spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    _register_model_classes()
elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AfterKerasImport())
