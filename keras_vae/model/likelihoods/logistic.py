"""The discretized logistic mixture: p(x|z) of 8-bit pixels (PixelCNN++, Salimans et al.).

Each pixel and channel gets a mixture of M logistics over the 256 levels k/255; the edge
bins take the tails, so the probabilities of the 256 levels sum to 1 (tested).
"""

from __future__ import annotations

from keras import ops

LEVELS = 255
"""8-bit pixels take the values k / 255, k = 0 … 255."""

HALF_BIN = 0.5 / LEVELS
LOG_SCALE_RANGE = (-7.0, 7.0)
"""Bounds of the logistics' log-scales, as PixelCNN++ bounds them below: the probability
of a bin stays finite and its gradient bounded for any decoder output."""

LOG_SCALE_OFFSET = -2.0
"""Added to the decoder's raw log-scale, so a fresh decoder (outputs near 0) starts with
logistics about 0.14 wide on the [0, 1] pixel scale rather than 1."""


class DiscretizedLogistic:
    """A mixture of `components` logistics per pixel and channel, discretized to 256 bins.

    Bin k of 0 … 255 covers x = k/255 ± 1/510; bin 0 also takes the left tail and bin 255
    the right tail, so the 256 probabilities sum to 1. The parameters [.., H, W, C·3·M]
    are, per channel, M mixture logits, M locations (pixel units, 0.5 + raw) and M
    log-scales (raw + `LOG_SCALE_OFFSET`, clipped to `LOG_SCALE_RANGE`).
    """

    name = "logistic"
    fuse_in_evaluation = True
    """A dozen elementwise operations per component, which XLA fuses into one pass."""

    def __init__(self, image_shape: tuple[int, int, int], components: int):
        self.image_shape = tuple(image_shape)
        self.components = components
        self.parameters_per_channel = 3 * components

    def split(self, parameters):
        """→ (mixture_logits, locations, log_scales), each [.., H, W, C, M]."""
        lead = ops.shape(parameters)[:-3]
        shaped = ops.reshape(parameters, (*lead, *self.image_shape, 3, self.components))
        # unstack, not three strided slices: its gradient is one stack, where the slices'
        # each write a zero-filled copy of the whole tensor (half the likelihood's time).
        logits, raw_locations, raw_log_scales = ops.unstack(shaped, 3, axis=-2)
        log_scales = ops.clip(raw_log_scales + LOG_SCALE_OFFSET, *LOG_SCALE_RANGE)
        return logits, 0.5 + raw_locations, log_scales

    def neg_log_prob(self, x, parameters, exportable: bool = True):
        """−log Σ_m π_m·P_m(bin of x), summed over the image: log P_m from
        `bin_probability_terms`, the mixture a log-sum-exp over the trailing axis of M
        components (a form whose gradient XLA compiles well, for training). With
        `exportable=False` a bin's width factor is TensorFlow's expm1, which ONNX and
        LiteRT lack: the likelihood's forward and backward pass of a 32×32×3 batch of
        64 took 63 ms against 85 ms with the series of `_one_minus_exp_neg`, a spatial
        model's training step 6 % less (2026-12-06, without XLA)."""
        return -ops.sum(self._log_mixture(x, parameters, exportable), axis=(-3, -2, -1))

    def pixel_neg_log_prob(self, x, parameters):
        """`neg_log_prob` before the sum over the image, summed over channels: [.., H, W]."""
        return -ops.sum(self._log_mixture(x, parameters), axis=-1)

    def _log_mixture(self, x, parameters, exportable: bool = True):
        """log Σ_m π_m·P_m(bin of x) per pixel and channel, [.., H, W, C]."""
        logits, locations, log_scales = self.split(parameters)
        tail, ratio = bin_probability_terms(x[..., None], locations, log_scales, exportable)
        # log Σ softmax(l)·p = logsumexp(l + log p) − logsumexp(l): cheaper than log_softmax.
        return (ops.logsumexp(ops.log(ratio) - tail + logits, axis=-1)
                - ops.logsumexp(logits, axis=-1))

    def scoring_neg_log_prob(self, x, parameters):
        """The same values as `neg_log_prob`, for scoring without a gradient. With each
        bin probability written P_m = e^(−t_m)·r_m and s = max_m (l_m − t_m),

            log Σ_m π_m·P_m = s + log Σ_m e^(l_m − t_m − s)·r_m − logsumexp_m(l_m):

        one exponential per component and no logarithm until the sum, the M components
        unrolled so that every operation is elementwise over the image, which XLA
        vectorizes. The parameters are first turned plane-major (`_planes`), so each of
        those operations reads contiguous memory. Compiled by XLA it scores 7-9× faster
        than `neg_log_prob`, compiled or not (3,300 images of 28×28, 2026-11-30); XLA's
        gradient of it is a hundred times slower, hence two forms (docs/performance.md)."""
        planes, pixels = _planes(parameters, self.image_shape), _planes(x, self.image_shape)
        m = self.components
        log_likelihood = 0.0
        for channel in range(self.image_shape[-1]):
            first = channel * 3 * m
            logits = [planes[..., first + i, :] for i in range(m)]
            terms = [bin_probability_terms(
                pixels[..., channel, :], 0.5 + planes[..., first + m + i, :],
                ops.clip(planes[..., first + 2 * m + i, :] + LOG_SCALE_OFFSET,
                         *LOG_SCALE_RANGE)) for i in range(m)]
            log_likelihood = log_likelihood + ops.sum(_log_mixture(logits, terms), axis=-1)
        return -log_likelihood

    def mean(self, parameters):
        """E[x|z], the mean of the discretized mixture, in [0, 1]: Σ_m π_m·E_m with

            E_m = (1/255)·Σ_{k=1..255} P(x ≥ k/255) ≈ s·(softplus(μ/s) − softplus((μ − 1)/s)),

        the sum of the 255 upper-tail probabilities σ((μ − b_k)/s) at the bin edges
        b_k = (k − ½)/255 taken as the integral of σ((μ − b)/s) over b in [0, 1] (the
        midpoint rule, which that sum is). The tails that the edge bins take are part of
        it, so a logistic centred at 0 has a mean above 0. Within 2.3e-4 of the direct sum
        over the 256 bins for every location and every scale `LOG_SCALE_RANGE` allows
        (the worst case is the narrowest logistic, s = e⁻⁷), against the 1/510 of half a
        level; tested.
        """
        logits, locations, log_scales = self.split(parameters)
        scales = ops.exp(log_scales)
        component_means = scales * (_softplus(locations / scales)
                                    - _softplus((locations - 1.0) / scales))
        return ops.sum(ops.softmax(logits, axis=-1) * component_means, axis=-1)

    def named_parameters(self, parameters) -> dict:
        logits, locations, log_scales = self.split(parameters)
        return {"mixture_logits": logits, "locations": locations, "log_scales": log_scales}


def _softplus(x):
    """log(1 + eˣ) = max(x, 0) + log(1 + e^−|x|), from elementwise ops that every export
    format has as builtins (LiteRT has no softplus); exact to float32 rounding."""
    return ops.maximum(x, 0.0) + ops.log(1.0 + ops.exp(-ops.abs(x)))


SERIES_BELOW = 0.5
"""Below it `_one_minus_exp_neg` sums its series, whose first left-out term is then
under 1.5e-8 of the value; above it 1 − e^(−δ) itself is accurate to 2e-7."""


def _one_minus_exp_neg(delta):
    """1 − e^(−δ) for δ > 0, accurate for small δ as −expm1(−δ) is, at about a third of
    XLA's expm1 on CPU (measured: docs/performance.md): the series
    δ(1 − δ/2(1 − δ/3(1 − … δ/8))) below `SERIES_BELOW`, one exponential above."""
    series = 1.0
    for n in range(8, 1, -1):
        series = 1.0 - delta / n * series
    return ops.where(delta < SERIES_BELOW, delta * series, 1.0 - ops.exp(-delta))


def _planes(values, image_shape):
    """[.., H, W, K] → [.., K, H·W]: one contiguous plane per channel or parameter, where
    the decoder's layout interleaves them (measured: the scoring's elementwise passes run
    1.4× faster on planes, transposing included)."""
    height, width, _ = image_shape
    lead = ops.shape(values)[:-3]
    flat = ops.reshape(values, (*lead, height * width, values.shape[-1]))
    return ops.swapaxes(flat, -1, -2)


def _log_mixture(logits: list, terms: list):
    """log Σ_m softmax(l)_m·e^(−t_m)·r_m from the components' logits and
    `bin_probability_terms`, one exponential per component (`scoring_neg_log_prob`)."""
    exponents = [logit - tail for logit, (tail, _) in zip(logits, terms, strict=True)]
    shift, top_logit = _maximum(exponents), _maximum(logits)
    weighted = sum(ops.exp(exponent - shift) * ratio
                   for exponent, (_, ratio) in zip(exponents, terms, strict=True))
    normalizer = sum(ops.exp(logit - top_logit) for logit in logits)
    return shift + ops.log(weighted) - top_logit - ops.log(normalizer)


def _maximum(tensors: list):
    top = tensors[0]
    for tensor in tensors[1:]:
        top = ops.maximum(top, tensor)
    return top


def bin_probability_terms(x, location, log_scale, exportable: bool = True):
    """P(bin of x) under one logistic(location, exp(log_scale)), x in {k/255}, as
    (t, r) with P = e^(−t)·r, t ≥ 0 and r in (0, 1]: no logarithm taken, so a mixture
    sums its components' probabilities with one exponential each.

    With a = (x − μ + ½/255)/s and b = (x − μ − ½/255)/s, the middle bins have
    σ(a) − σ(b) = σ(a)·(1 − σ(b))·(1 − e^(b−a)); σ(a) = e^(−max(−a, 0)) / (1 + e^(−|a|))
    and 1 − σ(b) = e^(−max(b, 0)) / (1 + e^(−|b|)), exact for any location and scale, and
    1 − e^(b−a) = 1 − e^(−1/(255·s)) from `_one_minus_exp_neg`, accurate for wide
    logistics. Bin 0 keeps only the first factor (the left tail), bin 255 only the second
    (the right tail), chosen by 0/1 masks of x rather than `where`: the same values, and
    a backward pass that multiplies instead of building full-size gradients and selecting
    among them. `exportable=False`: 1 − e^(−δ) from `ops.expm1` (see `neg_log_prob`).
    """
    inverse_scale = ops.exp(-log_scale)
    centred = x - location
    upper = (centred + HALF_BIN) * inverse_scale
    lower = (centred - HALF_BIN) * inverse_scale
    below_top = ops.cast(x < 1.0 - HALF_BIN, upper.dtype)  # every bin but 255
    above_bottom = ops.cast(x > HALF_BIN, upper.dtype)  # every bin but 0
    tail = below_top * ops.maximum(-upper, 0.0) + above_bottom * ops.maximum(lower, 0.0)
    middle = below_top * above_bottom
    delta = 2.0 * HALF_BIN * inverse_scale
    one_minus_exp_neg = _one_minus_exp_neg(delta) if exportable else -ops.expm1(-delta)
    width = middle * one_minus_exp_neg + (1.0 - middle)
    spread = ((1.0 + below_top * ops.exp(-ops.abs(upper)))
              * (1.0 + above_bottom * ops.exp(-ops.abs(lower))))
    return tail, width / spread

