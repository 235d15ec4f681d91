"""The same networks in PyTorch eager mode, for `python -m keras_vae.bench` to compare
training speed on the same machine in the same run. PyTorch is optional (not in
requirements.txt); constructing a twin without it raises ImportError.

The conv twin computes the discretized logistic likelihood in PyTorch: the comparison
needs the whole training step in each framework. It reads the likelihood's constants
from `keras_vae.model.likelihoods.logistic` and is tested equal to it in value.
"""

from __future__ import annotations

import os
import time

import numpy as np

from keras_vae.config import DEFAULT_IMAGE_SHAPE
from keras_vae.model.guarded_update import CLIP_NORM_PER_DIMENSION, SKIP_NORM_PER_DIMENSION
from keras_vae.model.likelihoods.logistic import HALF_BIN, LOG_SCALE_OFFSET, LOG_SCALE_RANGE

PIXELS = int(np.prod(DEFAULT_IMAGE_SHAPE))
"""The MLP twin trains on binarized MNIST's 28×28 images."""


class TorchVAE:
    """The same VAE (784-400-20 MLP, Adam 1e-3, summed BCE + analytic KL, batch mean) in
    PyTorch eager mode, trained one epoch at a time."""

    def __init__(self, images: np.ndarray, batch_size: int = 128):
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(os.cpu_count() or 1)
        self.torch, self.batch_size = torch, batch_size
        self.x = torch.from_numpy(images.reshape(len(images), PIXELS))
        self.layers = torch.nn.ModuleDict({
            "enc": torch.nn.Linear(PIXELS, 400), "mu": torch.nn.Linear(400, 20),
            "logvar": torch.nn.Linear(400, 20), "dec": torch.nn.Linear(20, 400),
            "out": torch.nn.Linear(400, PIXELS)})
        self.optimizer = torch.optim.Adam(self.layers.parameters(), lr=1e-3)

    def epoch(self) -> float:
        torch, layers = self.torch, self.layers
        start = time.perf_counter()
        for batch in self.x[torch.randperm(len(self.x))].split(self.batch_size):
            h = torch.relu(layers["enc"](batch))
            mu, logvar = layers["mu"](h), layers["logvar"](h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            logits = layers["out"](torch.relu(layers["dec"](z)))
            reconstruction = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, batch, reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (reconstruction + kl) / len(batch)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - start


class TorchConvVAE:
    """keras-vae's conv network for 32×32×3 images in PyTorch eager mode: two stride-2
    3×3 convolutions (32, 64), dense 400, z of 20; mirrored by dense layers,
    convolve-and-upsample (bilinear) steps and a 3×3 convolution to the discretized
    logistic mixture's parameters; the same loss (negative ELBO, batch mean) and Adam."""

    def __init__(self, images: np.ndarray, batch_size: int = 128, components: int = 5):
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(os.cpu_count() or 1)
        nn = torch.nn
        self.torch, self.batch_size, self.components = torch, batch_size, components
        self.x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        channels, side = images.shape[-1], images.shape[1] // 4
        self.layers = nn.ModuleDict({
            "enc0": nn.Conv2d(channels, 32, 3, 2, 1), "enc1": nn.Conv2d(32, 64, 3, 2, 1),
            "hidden": nn.Linear(64 * side * side, 400), "mu": nn.Linear(400, 20),
            "logvar": nn.Linear(400, 20), "dec": nn.Linear(20, 400),
            "grid": nn.Linear(400, 64 * side * side), "dec0": nn.Conv2d(64, 64, 3, 1, 1),
            "dec1": nn.Conv2d(64, 32, 3, 1, 1),
            "out": nn.Conv2d(32, channels * 3 * components, 3, 1, 1)})
        self.side = side
        self.optimizer = torch.optim.Adam(self.layers.parameters(), lr=1e-3)

    def _neg_log_prob(self, x, parameters):
        return logistic_neg_log_prob(self.torch, x, parameters, self.components)

    def epoch(self) -> float:
        torch, layers, functional = self.torch, self.layers, self.torch.nn.functional
        start = time.perf_counter()
        for batch in self.x[torch.randperm(len(self.x))].split(self.batch_size):
            h = torch.relu(layers["enc1"](torch.relu(layers["enc0"](batch))))
            h = torch.relu(layers["hidden"](h.flatten(1)))
            mu, logvar = layers["mu"](h), layers["logvar"](h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            h = torch.relu(layers["grid"](torch.relu(layers["dec"](z))))
            h = h.reshape(-1, 64, self.side, self.side)
            for name in ("dec0", "dec1"):
                h = functional.interpolate(torch.relu(layers[name](h)), scale_factor=2,
                                           mode="bilinear", align_corners=False)
            reconstruction = self._neg_log_prob(batch, layers["out"](h))
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
            loss = (reconstruction + kl).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - start


class TorchHierarchicalVAE:
    """keras-vae's hierarchical MLP on binarized MNIST (`--latent-dim 32,16`, hidden 400)
    in PyTorch eager mode: the bottom-up pass, the top-down levels with zero-started prior
    heads, residual posteriors and a residual state, the pixels read from the last state,
    the same loss (−log p(x|z) + Σ_l KL, batch mean), Adam, and the same update guards
    (the hierarchy's clipping and skipping thresholds times 784 pixels). Its layers
    carry the Keras layers' names (`layers`), so a test can give it the Keras model's
    weights."""

    def __init__(self, images: np.ndarray, levels: tuple[int, ...] = (32, 16),
                 width: int = 400, batch_size: int = 128):
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(os.cpu_count() or 1)
        self.torch, self.batch_size, self.levels = torch, batch_size, levels
        self.x = torch.from_numpy(images.reshape(len(images), PIXELS))
        self.layers = torch.nn.ModuleDict(_hierarchy_layers(torch.nn, levels, width))
        self.optimizer = torch.optim.Adam(self.layers.parameters(), lr=1e-3)

    def neg_elbo(self, batch, noise: list):
        """−ELBO per example for the noise ε of each level ([N, d_l], level 1 first)."""
        torch, layers, top = self.torch, self.layers, len(self.levels) - 1
        features = [torch.relu(layers["encoder_hidden_0"](batch))]
        for level in range(2, top + 2):
            features.append(torch.relu(layers[f"bottom_up_{level}"](features[-1])))
        mean, log_var = layers[f"posterior_{top + 1}"](features[top]).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * log_var) * noise[top]
        kl = 0.5 * torch.sum(mean.pow(2) + log_var.exp() - 1 - log_var, dim=-1)
        state = torch.relu(layers[f"state_{top + 1}"](z))
        for level in range(top - 1, -1, -1):
            prior_mean, prior_log_var = layers[f"prior_{level + 1}"](state).chunk(2, dim=-1)
            delta_mean, delta_log_var = layers[f"posterior_{level + 1}"](
                torch.cat([features[level], state], dim=-1)).chunk(2, dim=-1)
            mean, log_var = prior_mean + delta_mean, prior_log_var + delta_log_var
            z = mean + torch.exp(0.5 * log_var) * noise[level]
            kl = kl + 0.5 * torch.sum(prior_log_var - log_var - 1 + (
                log_var.exp() + (mean - prior_mean).pow(2)) * torch.exp(-prior_log_var), dim=-1)
            state = state + torch.relu(layers[f"state_{level + 1}"](
                torch.cat([state, z], dim=-1)))
        logits = layers["pixel_parameters"](state)
        reconstruction = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, batch, reduction="none").sum(dim=-1)
        return reconstruction + kl

    def epoch(self) -> float:
        torch = self.torch
        parameters = list(self.layers.parameters())
        start = time.perf_counter()
        for batch in self.x[torch.randperm(len(self.x))].split(self.batch_size):
            noise = [torch.randn(len(batch), size) for size in self.levels]
            loss = self.neg_elbo(batch, noise).mean()
            self.optimizer.zero_grad()
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(parameters, CLIP_NORM_PER_DIMENSION * PIXELS)
            if torch.isfinite(norm) and norm < SKIP_NORM_PER_DIMENSION * PIXELS:
                self.optimizer.step()
        return time.perf_counter() - start


def _hierarchy_layers(nn, levels: tuple[int, ...], width: int) -> dict:
    """The hierarchy's linear layers by their Keras names; the prior heads and the lower
    levels' residual posterior heads start at zero, as keras-vae's do."""
    top = len(levels)
    layers = {"encoder_hidden_0": nn.Linear(PIXELS, width)}
    layers.update({f"bottom_up_{level}": nn.Linear(width, width)
                   for level in range(2, top + 1)})
    for level, size in enumerate(levels, start=1):
        layers[f"posterior_{level}"] = nn.Linear(width if level == top else 2 * width,
                                                 2 * size)
        layers[f"state_{level}"] = nn.Linear(size if level == top else width + size, width)
        if level < top:
            layers[f"prior_{level}"] = nn.Linear(width, 2 * size)
            for head in (layers[f"prior_{level}"], layers[f"posterior_{level}"]):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
    layers["pixel_parameters"] = nn.Linear(width, PIXELS)
    return layers


def logistic_neg_log_prob(torch, x, parameters, components: int):
    """keras-vae's discretized logistic mixture in PyTorch: −log p(x) per image for x
    [N, C, H, W] in [0, 1] and parameters [N, C·3·K, H, W] (per channel: K logits, K
    locations, K log-scales), with the Keras likelihood's constants."""
    functional = torch.nn.functional
    n, channels, height, width = x.shape
    shaped = parameters.reshape(n, channels, 3, components, height, width)
    logits = shaped[:, :, 0]
    locations = 0.5 + shaped[:, :, 1]
    log_scales = torch.clamp(shaped[:, :, 2] + LOG_SCALE_OFFSET, *LOG_SCALE_RANGE)
    x = x.unsqueeze(2)
    inverse_scale = torch.exp(-log_scales)
    upper = (x - locations + HALF_BIN) * inverse_scale
    lower = (x - locations - HALF_BIN) * inverse_scale
    left, right = -functional.softplus(-upper), -functional.softplus(lower)
    middle = left + right + torch.log(-torch.expm1(-2 * HALF_BIN * inverse_scale))
    log_bins = torch.where(x < HALF_BIN, left, torch.where(x > 1 - HALF_BIN, right, middle))
    log_mixture = torch.logsumexp(log_bins + torch.log_softmax(logits, dim=2), dim=2)
    return -log_mixture.sum(dim=(1, 2, 3))
