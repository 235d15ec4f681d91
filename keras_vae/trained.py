"""A trained VAE as a Python user calls it: numpy arrays in, numpy arrays out.

The commands read and write run directories; people who use Keras in their own code want
the model itself. `load(RUN_DIR)` gives a `TrainedVAE` whose methods sample, encode,
decode, reconstruct and measure likelihood with the same functions the commands use, and
`TrainedVAE(model)` wraps a VAE trained in Python with `fit`. `train(config)` runs the
command's whole training procedure from Python and returns the result.

Images are [N, H, W, C] (or [N, H, W] for one channel): float pixels in [0, 1] are taken
as they are; uint8 pixels are divided by 255, or by 1 for a Bernoulli model whose pixels
are all 0 or 1 (as the training data were scaled).
"""

from __future__ import annotations

import difflib

import numpy as np
from keras import ops

from keras_vae.config import TrainConfig, bits_per_dim
from keras_vae.model.vae import VAE


class TrainedVAE:
    """A VAE with numpy methods, and the settings of the run that trained it.

    Args:
        model: a keras-vae `VAE` (any kind: one level or a hierarchy, conditional or not).
        run_config: the `TrainConfig` of the run that trained it, if any.
        run_dir: where that run lives, if anywhere.

    Example:
        >>> vae = keras_vae.load("runs/my-run")
        >>> images = vae.sample(16, seed=0, temperature=0.8)   # [16, 28, 28, 1] in [0, 1]
        >>> nats = -vae.log_likelihood(images[:4], k=100)     # −log p(x) per image
    """

    def __init__(self, model: VAE, run_config: TrainConfig | None = None,
                 run_dir: str | None = None):
        self.model, self.run_config, self.run_dir = model, run_config, run_dir
        self.config = model.config

    def __repr__(self) -> str:
        where = f" from {self.run_dir}" if self.run_dir else ""
        return (f"TrainedVAE({self.config.likelihood}, latent levels "
                f"{list(self.config.levels)}, images {list(self.config.image_shape)}{where})")

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.config.label_names

    def sample(self, n: int, seed: int = 0, temperature: float = 1.0, label=None
               ) -> np.ndarray:
        """n images drawn from the prior, E[x|z]: float32 [n, H, W, C] in [0, 1]. The
        same seed gives the same images. `temperature` scales the prior's standard
        deviations (below 1: nearer its mode). `label`: a class (index or name), or one
        per image, for a conditional model."""
        inputs = self.model.sample_inputs(n, seed, self._given_labels(label, n), temperature)
        return self.model.sample_images(inputs)

    def encode(self, images, labels=None) -> tuple[np.ndarray, np.ndarray]:
        """q(z|x): (z_mean, z_log_var), float32 [N, Σ d_l] each (a hierarchy's levels
        along the posterior mean path, level 1 first)."""
        pixels, labels = self._pixels(images), self._given_labels(labels, len(images))
        z_mean, z_log_var = self.model.encode(pixels, labels)
        return ops.convert_to_numpy(z_mean), ops.convert_to_numpy(z_log_var)

    def decode(self, z, labels=None) -> np.ndarray:
        """E[x|z] for given z [N, Σ d_l] (from `encode`, or between two codes): float32
        [N, H, W, C] in [0, 1]."""
        z = np.asarray(z, np.float32)
        labels = self._given_labels(labels, len(z))
        return ops.convert_to_numpy(self.model.mean_image(z, labels))

    def reconstruct(self, images, labels=None) -> np.ndarray:
        """E[x|z] at each image's posterior mean: float32 [N, H, W, C] in [0, 1]."""
        pixels = self._pixels(images)
        return self.model.reconstructions(pixels, self._given_labels(labels, len(pixels)))

    def log_likelihood(self, images, k: int = 1000, seed: int = 0, labels=None
                       ) -> np.ndarray:
        """log p(x) per image in nats, float64 [N] (log p(x|y) for a conditional model):
        the importance-sampled estimate of `python -m keras_vae.evaluate` with k samples,
        the same numbers for the same images, k and seed. `bits_per_dim` converts it."""
        from keras_vae.measure.nll import importance_nll

        pixels = self._pixels(images)
        return -importance_nll(self.model, pixels, k, seed,
                               labels=self._given_labels(labels, len(pixels)))

    def score(self, images, k: int | None = None, calibration=None) -> dict:
        """How unusual each image is to the model (`keras_vae.measure.scoring`): {"score",
        "neg_log_likelihood", "bits_per_dim", "flagged", "pixel_map"} as numpy, the
        numbers `python -m keras_vae.score` writes for the same images. The calibration
        is the run's (RUN/scoring.json, measured on its validation images when missing),
        or one given (`keras_vae.measure.scoring.calibrate` on images of your own)."""
        from keras_vae.config import DEFAULT_SCORE_K
        from keras_vae.measure.scoring import Scorer, batch_size_for, in_batches

        if calibration is None:
            if self.run_dir is None:
                raise ValueError("a model without a run directory has no stored "
                                 "calibration: pass calibration= (keras_vae.measure.scoring."
                                 "calibrate on in-distribution images)")
            from keras_vae.measure.scoring import calibration_for

            calibration = calibration_for(self.run_dir, self.model, self.run_config,
                                          k or DEFAULT_SCORE_K)
        if getattr(self, "_scoring", (None,))[0] != calibration:  # traced once per calibration
            self._scoring = (calibration, Scorer(self.model, calibration.k, calibration).function())
        pixels = np.round(self._pixels(images) * 255).astype(np.uint8)
        return in_batches(self._scoring[1], pixels, batch_size_for(self.model, calibration.k))

    def bits_per_dim(self, log_likelihood) -> np.ndarray:
        """−log p(x) in bits per dimension (pixel and channel), from `log_likelihood`."""
        return bits_per_dim(-np.asarray(log_likelihood), self.config.image_shape)

    # --- inputs ---------------------------------------------------------------------

    def _pixels(self, images) -> np.ndarray:
        """Images as the model takes them: float32 [N, H, W, C] in [0, 1]."""
        images = np.asarray(images)
        if images.ndim == 3 and self.config.image_shape[-1] == 1:
            images = images[..., None]
        if images.shape[1:] != self.config.image_shape:
            raise ValueError(f"images of shape {list(images.shape[1:])}; this model takes "
                             f"{list(self.config.image_shape)} (height, width, channels)")
        if images.dtype == np.uint8:
            binary = self.config.likelihood == "bernoulli" and images.max(initial=0) <= 1
            return images.astype(np.float32) / (1.0 if binary else 255.0)
        return images.astype(np.float32)

    def _given_labels(self, labels, count: int) -> np.ndarray | None:
        """int64 [count] for a conditional model (one label for all, or one each), None
        for another; a model given labels it does not take, or not given those it needs,
        is told which."""
        if (labels is None) == self.config.conditional:
            raise ValueError(
                f"this model is conditional: pass label= one of {', '.join(self.label_names)}"
                f" (or its index), or one per image" if self.config.conditional
                else "this model is not conditional; drop the labels")
        return None if labels is None else self._labels(labels, count)

    def _labels(self, label, n: int) -> np.ndarray:
        """int64 [n]: one label (index or class name) for all n, or one per item."""
        given = [label] * n if np.ndim(label) == 0 else list(label)
        if len(given) != n:
            raise ValueError(f"{len(given)} labels for {n} images")
        return np.asarray([self._label_index(one) for one in given], np.int64)

    def _label_index(self, label) -> int:
        names = self.label_names
        if isinstance(label, str):
            found = [i for i, name in enumerate(names) if name.lower() == label.lower()]
            if not found:
                close = difflib.get_close_matches(label, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"label {label!r} is not a class of this model{hint}; "
                                 f"its classes: {', '.join(names)}")
            return found[0]
        if not 0 <= int(label) < len(names):
            raise ValueError(f"label {label} is not a class index 0-{len(names) - 1}")
        return int(label)


def load(run_dir: str) -> TrainedVAE:
    """The best model of a run directory written by `python -m keras_vae.train` (or
    `train`), with its settings.

    Raises:
        keras_vae.run.cli.UsageError: no trained run there.
        keras_vae.run.cli.RunFailure: the checkpoint cannot be loaded.
    """
    from keras_vae.run.layout import load_run

    model, config = load_run(run_dir)
    return TrainedVAE(model, config, run_dir)


def train(config: TrainConfig, verbose: int = 2, resume: bool = False,
          overwrite: bool = False) -> TrainedVAE | None:
    """Trains, evaluates and draws a run exactly as `python -m keras_vae.train` does
    (without exporting: `python -m export RUN_DIR` does that), writing `config.out` (None:
    a new folder under runs/, as the command's), and returns the trained model.
    `verbose`: Keras's 0, 1 or 2; `resume`, `overwrite`: as the command's flags. None on
    a worker of multi-worker training other than the chief, which keeps no run."""
    import dataclasses

    from keras_vae.run.layout import default_run_dir
    from keras_vae.run.training import train as train_run

    if config.out is None:
        config = dataclasses.replace(config, out=default_run_dir(config.dataset))
    if train_run(config, verbose, resume, overwrite) is None:
        return None
    return load(config.out)
