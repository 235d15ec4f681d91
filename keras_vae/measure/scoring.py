"""How unusual an image is to a trained model: the anomaly and out-of-distribution scores.

A likelihood model's own −log p(x) is the obvious score and a famously wrong one: a model
of Fashion-MNIST finds MNIST's digits *more* likely than its own test images (Nalisnick
et al. 2019), because a likelihood is dominated by how simple an image is (large flat
backgrounds cost few bits), not by what it shows. The default score (`Scorer`) takes
the larger of two standardized terms:

- **typicality**, the two-sided distance of −log p(x) from the run's own validation
  images': too likely is as suspect as too unlikely (the "typical set" test of
  Nalisnick et al. 2019);
- **other views**: how much more likely the model finds the image flipped or turned
  half a turn than as given, −log p(x) − min_T −log p(T(x)): an image that looks more
  like the data the other way round is the wrong way round. It catches what no pixel
  statistic does: upside-down images have exactly their originals' likelihood.

Tried and measured beside it (`python -m keras_vae.score_bench`, docs/scoring.md): the
complexity-corrected likelihood of Serrà et al. (2020), −log₂ p(x) − L(x) with L(x) from
PNG or from a predictive coder (`predictive_code_bits`: JPEG-LS's median edge predictor,
residuals coded by a two-sided geometric distribution fitted to the image), and the
hierarchical likelihood ratio LLR^{>1} of Havtorn et al. (2021).

Every score is a pure function of the image: the importance samples use one fixed noise
ε [k, Σ d_l] (`score_noise`, drawn from numpy's generator with `SCORE_SEED`), the same
for every image, every call and every format (the exported scorer holds it as a
constant). Images are uint8 [N, H, W, C] as stored, scaled by the run's pixel scale.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae.config import DEFAULT_FPR, DEFAULT_SCORE_K
from keras_vae.measure.nll import largest_tensor_per_decoding
from keras_vae.model.graphs import FLOATS_PER_CALL
from keras_vae.run.atomic import write_json
from keras_vae.run.layout import SCORING_JSON
from keras_vae.run.progress import progress_lines

SCORE_SEED = 2019
"""The seed of the scoring noise (`score_noise`): a documented constant, so a score
depends on nothing but the image and the scoring settings (k)."""
LOG2 = math.log(2.0)


def score_noise(k: int, width: int) -> np.ndarray:
    """The fixed noise ε [k, width] float32 of every score's k importance samples."""
    return np.random.default_rng(SCORE_SEED).standard_normal((k, width)).astype(np.float32)


def as_pixels(images, pixel_max: int):
    """uint8 images [N, H, W, C] → float32 in [0, 1], as the run's pipeline scales them
    (`pixel_max` 255, or 1 for data stored as 0/1)."""
    return ops.cast(images, "float32") / float(pixel_max)


def log_weights(vae, pixels, noise, first_kept: int = 1, components=()):
    """log w [k, N] of k importance samples per image, the noise ε [k, Σ d_l] the same for
    every image: with `first_kept` 1 those of −log p(x) (`VAE.importance_log_weights`);
    above 1 (a hierarchy) those of the bound whose levels below `first_kept` are drawn
    from their priors (`VAE.log_weights_keeping`)."""
    k, n = ops.shape(noise)[0], ops.shape(pixels)[0]
    epsilon = ops.broadcast_to(ops.expand_dims(noise, 1), (k, n, ops.shape(noise)[1]))
    if first_kept == 1:
        proposal = vae.importance_proposal(pixels)
        return vae.importance_log_weights(pixels, proposal, epsilon, None, components,
                                          vae.likelihood)
    tiled = ops.tile(pixels, (k, 1, 1, 1))
    flat = ops.reshape(epsilon, (-1, ops.shape(noise)[1]))
    return ops.reshape(vae.log_weights_keeping(tiled, flat, first_kept, vae.likelihood,
                                               components), (k, n))


def log_mean_exp(log_w):
    """log (1/k) Σ_i exp(log w_i) over the first axis: the importance-weighted bound."""
    return ops.logsumexp(log_w, axis=0) - ops.log(ops.cast(ops.shape(log_w)[0], "float32"))


def predictive_code_bits(images):
    """L(x), bits: the ideal code length of uint8 images [N, H, W, C] under a predictive
    lossless coder. Each pixel is predicted from its left (a), upper (b) and upper-left (c)
    neighbours by JPEG-LS's median edge detector (min(a, b) if c ≥ max(a, b), max(a, b)
    if c ≤ min(a, b), else a + b − c; outside the image 0), and the residuals r are coded
    by a two-sided geometric distribution P(r) = (1−θ)/(1+θ)·θ^|r| whose θ is fitted to
    the image's mean |r| (its maximum-likelihood value)."""
    x = ops.cast(images, "float32")
    a = ops.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]
    b = ops.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]
    c = ops.pad(x, ((0, 0), (1, 0), (1, 0), (0, 0)))[:, :-1, :-1]
    low, high = ops.minimum(a, b), ops.maximum(a, b)
    prediction = ops.where(c >= high, low, ops.where(c <= low, high, a + b - c))
    residual = ops.abs(x - prediction)
    count = float(np.prod(images.shape[1:]))
    mean = ops.maximum(ops.mean(residual, axis=(1, 2, 3)), 1e-3)
    theta = (ops.sqrt(1.0 + ops.square(mean)) - 1.0) / mean
    return count * (ops.log((1.0 + theta) / (1.0 - theta)) - mean * ops.log(theta)) / LOG2


def pixel_map(vae, pixels):
    """−log p(x_ij | z) [N, H, W] nats, summed over channels, at the posterior mean (a
    hierarchy's mean path): where in the image the model finds it unlikely."""
    z_mean, _ = vae.encode(pixels)
    return vae.likelihood.pixel_neg_log_prob(pixels, vae.decode(z_mean))


@dataclass(frozen=True)
class Calibration:
    """What a run's scores are measured against, from its validation images alone (no
    anomaly is needed): the mean and spread of their −log p(x) and likelihood ratio,
    which standardize each term, and the threshold that flags `fpr` of them. Stored in
    RUN/scoring.json and in the exported scorer."""

    k: int
    fpr: float
    threshold: float
    nll_mean: float
    nll_std: float
    view_mean: float
    view_std: float
    validation_scores: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Calibration:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if k == "validation_scores" else v)
                      for k, v in values.items() if k in fields})


VIEWS = {"flipped top to bottom": lambda x: ops.flip(x, axis=1),
         "flipped left to right": lambda x: ops.flip(x, axis=2),
         "turned half a turn": lambda x: ops.flip(ops.flip(x, axis=1), axis=2)}
"""The other views of an image that the orientation term compares it with: the flips
and the half turn, which keep any H×W."""


class Scorer:
    """The anomaly score of a trained unconditional model (see the module docstring).

    score = max(|z_nll|, z_view): the larger of two standardized terms, each in standard
    deviations of the run's validation images' own,
    - |z_nll|, the two-sided distance of −log p(x) from theirs (a typicality test:
      Nalisnick et al.'s digits are flagged for being too likely, noise and photographs
      for being too unlikely);
    - z_view, from −log p(x) − min_T −log p(T(x)) over the `VIEWS` T: how much more
      likely the model finds the image flipped or turned than as given (an upside-down
      garment, a part the wrong way round), which no pixel statistic shows.
    `terms` gives the raw quantities a calibration needs.
    """

    def __init__(self, vae, k: int = DEFAULT_SCORE_K, calibration: Calibration | None = None):
        if vae.config.conditional:
            raise ValueError("scoring takes an unconditional model: a conditional model's "
                             "likelihood is of an image given its class")
        self.vae, self.k, self.calibration = vae, k, calibration
        # numpy, made tensors inside each trace: constants of the graph that every
        # export format holds (tf2onnx leaves tensors captured from outside as inputs).
        self.noise = score_noise(k, sum(vae.config.levels))
        self.components = [ops.convert_to_numpy(t) for t in vae.prior_components()]
        self.dimensions = float(np.prod(vae.config.image_shape))

    def neg_log_likelihood(self, pixels, first_kept: int = 1):
        """−log p(x) [N] nats of pixels in [0, 1] by k importance samples (with
        `first_kept` above 1, of the bound whose lower levels come from their priors)."""
        components = [ops.convert_to_tensor(t) for t in self.components]
        return -log_mean_exp(log_weights(self.vae, pixels, ops.convert_to_tensor(self.noise),
                                         first_kept, components))

    def terms(self, images) -> dict:
        """uint8 images [N, H, W, C] → {"neg_log_likelihood" [N] nats, "view" [N]: how
        many nats more likely the likeliest other view is}."""
        pixels = as_pixels(images, 255)
        every_view = ops.concatenate([pixels, *(view(pixels) for view in VIEWS.values())])
        nll = ops.reshape(self.neg_log_likelihood(every_view), (len(VIEWS) + 1, -1))
        return {"neg_log_likelihood": nll[0], "view": nll[0] - ops.min(nll[1:], axis=0)}

    def ratio_terms(self, images) -> dict:
        """{"llr" [N]}: Havtorn et al.'s LLR^{>1} of a hierarchy, the bound with every
        level inferred from x less the bound with level 1 drawn from its prior (measured
        by `keras_vae.score_bench`; not part of the default score)."""
        pixels = as_pixels(images, 255)
        return {"llr": self.neg_log_likelihood(pixels, 2) - self.neg_log_likelihood(pixels)}

    def score_of(self, terms: dict, calibration: Calibration):
        """The anomaly score [N] of `terms` under a calibration (higher = more unusual)."""
        nll = (terms["neg_log_likelihood"] - calibration.nll_mean) / calibration.nll_std
        view = (terms["view"] - calibration.view_mean) / calibration.view_std
        return ops.maximum(ops.abs(nll), view)

    def terms_function(self, method: str = "terms"
                       ) -> tf.types.experimental.GenericFunction:
        """`terms` (or another method of uint8 images, `ratio_terms`) as a tf.function of
        uint8 [None, H, W, C] `images`, traced once per scorer."""
        traced = self.__dict__.setdefault("_traced", {})
        if method not in traced:
            spec = tf.TensorSpec([None, *self.vae.config.image_shape], tf.uint8)
            traced[method] = tf.function(getattr(self, method), input_signature=[spec])
        return traced[method]

    def outputs(self, images) -> dict:
        """Every output of the exported scorer for uint8 images [N, H, W, C]: `score`,
        `neg_log_likelihood` (nats), `bits_per_dim`, `flagged` (score above the stored
        threshold) and `pixel_map` [N, H, W] (`pixel_map`)."""
        terms = self.terms(images)
        score = self.score_of(terms, self.calibration)
        nll = terms["neg_log_likelihood"]
        return {"score": score, "neg_log_likelihood": nll,
                "bits_per_dim": nll / (self.dimensions * LOG2),
                "flagged": score > self.calibration.threshold,
                "pixel_map": pixel_map(self.vae, as_pixels(images, 255))}

    def function(self) -> tf.types.experimental.GenericFunction:
        """`outputs` as a tf.function of uint8 [None, H, W, C] `images`: what the command,
        the Python face and every export run, so that they give the same numbers."""
        spec = tf.TensorSpec([None, *self.vae.config.image_shape], tf.uint8, name="images")
        return tf.function(self.outputs, input_signature=[spec])


def batch_size_for(vae, k: int) -> int:
    """Images per scoring call: about 40 million floats in the decoder's largest tensor
    over every view's k samples (160 MB in float32). A convolutional decoder keeps ten
    or more tensors of that size alive: counting the outputs alone held 12 GB for a
    28×28 spatial model's feature maps, and 160 million floats 15 GB for a 64×64 one."""
    per_image = (len(VIEWS) + 1) * k * largest_tensor_per_decoding(vae)
    return max(1, min(512, FLOATS_PER_CALL // per_image))


def in_batches(function, images: np.ndarray, batch_size: int, progress=None) -> dict:
    """{name: numpy [N, …]}: `function` (uint8 images → {name: tensor}) on `images` in
    batches, `progress(done)` after each."""
    parts: dict[str, list] = {}
    for start in range(0, len(images), batch_size):
        for name, value in function(tf.constant(images[start:start + batch_size])).items():
            parts.setdefault(name, []).append(np.asarray(value))
        if progress is not None:
            progress(min(start + batch_size, len(images)))
    return {name: np.concatenate(values) for name, values in parts.items()}


def calibrate(scorer: Scorer, validation: np.ndarray, fpr: float = DEFAULT_FPR,
              progress=None) -> Calibration:
    """The calibration of a model's scores on its validation images (uint8): each term's
    mean and spread, then the threshold that `fpr` of their scores exceed."""
    terms = in_batches(scorer.terms_function(), validation,
                       batch_size_for(scorer.vae, scorer.k), progress)
    spread = {f"{short}_{statistic}": float(getattr(terms[name], statistic)() or 1.0)
              if statistic == "std" else float(terms[name].mean())
              for short, name in (("nll", "neg_log_likelihood"), ("view", "view"))
              for statistic in ("mean", "std")}
    draft = Calibration(k=scorer.k, fpr=fpr, threshold=math.inf, **spread)
    scores = np.asarray(scorer.score_of(terms, draft))
    return dataclasses.replace(draft, threshold=float(np.quantile(scores, 1.0 - fpr)),
                               validation_scores=tuple(round(float(s), 4) for s in scores))


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """The area under the ROC curve of scores that should be higher `outside`: the chance
    that an outside image scores above an inside one (ties count half), from ranks."""
    values = np.concatenate([inside, outside])
    _, position, counts = np.unique(values, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[position]  # ties share their mean rank
    n_out, n_in = len(outside), len(inside)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_out * n_in))


def read_calibration(run_dir: str) -> Calibration | None:
    """The run's stored calibration (RUN/scoring.json), or None."""
    try:
        with open(os.path.join(run_dir, SCORING_JSON)) as f:
            return Calibration.from_dict(json.load(f))
    except (OSError, ValueError, TypeError):
        return None


def calibration_for(run_dir: str, vae, config, k: int = DEFAULT_SCORE_K,
                    fpr: float = DEFAULT_FPR, say=print) -> Calibration:
    """The run's calibration for k samples at `fpr`, measured on its validation split.
    The default settings' is stored in RUN/scoring.json, measured once, and is the one
    every export carries; other settings are measured each time and not stored (`say`
    tells the user, since it takes a while)."""
    from keras_vae.data.pipeline import splits_for

    default = (k, fpr) == (DEFAULT_SCORE_K, DEFAULT_FPR)
    stored = read_calibration(run_dir) if default else None
    if stored is not None and (stored.k, stored.fpr) == (k, fpr):
        return stored
    validation = to_model_pixels(splits_for(config)["validation"])
    say(f"calibrating the anomaly score on the run's {len(validation)} validation images "
        f"(k = {k}, false-positive rate {fpr:g})", flush=True)
    lines = progress_lines(len(validation))
    calibration = calibrate(Scorer(vae, k), validation, fpr, lambda done: lines(
        done, f"calibrated on {done:,}/{len(validation):,} validation images"))
    if default:
        write_json(os.path.join(run_dir, SCORING_JSON), calibration.to_dict())
    return calibration


def to_model_pixels(split) -> np.ndarray:
    """A split's uint8 images on the scorer's 0…255 scale (data stored as 0/1 → 0/255)."""
    images = np.asarray(split.images)
    return images * np.uint8(255 // split.pixel_max) if split.pixel_max != 255 else images

