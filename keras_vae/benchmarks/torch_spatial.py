"""keras-vae's spatial network (`--arch spatial`) in PyTorch eager mode, for
`python -m keras_vae.bench` to compare training speed on the same machine in the same run.

The twin is the network `keras_vae.model.networks.spatial` describes, for images whose
sides halve evenly down to the lowest resolution (32×32: latent maps of 16×16 (two),
8×8 (two) and 4×4): the bottom-up residual blocks and average pools, the learned top
map, per level the prior head, the residual posterior head on [state, d_r], the 1×1
projection of z and the residual block, bilinear 2× upsampling, the output block and
the 1×1 convolution to the discretized logistic mixture; the same loss (−log p(x|z) +
Σ_l KL, batch mean, N(0, I) on the top level), Adam, and the same update guards. Its
modules carry the Keras layers' names, so a test can give it the Keras model's weights
and check that both compute the same −ELBO. PyTorch is optional: constructing the twin
without it raises ImportError.
"""

from __future__ import annotations

import os
import time

import numpy as np

from keras_vae.benchmarks.torch_twins import logistic_neg_log_prob
from keras_vae.model.guarded_update import CLIP_NORM_PER_DIMENSION, SKIP_NORM_PER_DIMENSION
from keras_vae.model.networks.latent_maps import latent_maps, resolutions
from keras_vae.model.networks.spatial import BOTTLENECK, LOG_VAR_CEILING

BLOCK_STEPS = (("reduce", 1), ("conv_a", 3), ("conv_b", 3), ("expand", 1))
"""A residual block's convolutions by their Keras names, and their kernel sizes."""


class TorchSpatialVAE:
    """The spatial network (module docstring) trained one epoch at a time; `convs` and
    `blocks` hold its modules by their Keras layers' names."""

    def __init__(self, images: np.ndarray, latent_channels: int = 8, width: int = 64,
                 batch_size: int = 64, components: int = 5):
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(os.cpu_count() or 1)
        self.torch, self.batch_size, self.components = torch, batch_size, components
        shape = images.shape[1:]
        self.sides = resolutions(*shape[:2])
        if any(2 * small != large for (small, _), (large, _) in zip(
                self.sides[1:], self.sides, strict=False)) or shape[0] != shape[1]:
            raise ValueError(f"the twin takes square images whose sides halve evenly, "
                             f"not {shape[0]}×{shape[1]}")
        self.maps = latent_maps(shape, latent_channels)
        self.x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        self.convs, self.blocks = _spatial_modules(torch.nn, self.maps, len(self.sides),
                                                   shape[-1], width, components)
        self.top_map = torch.nn.Parameter(torch.zeros(width, *self.maps[-1].shape[:2]))
        self.parameters = [self.top_map, *(parameter for module in (
            *self.convs.values(), *self.blocks.values()) for parameter in module.parameters())]
        self.optimizer = torch.optim.Adam(self.parameters, lr=1e-3)
        self.dimensions = int(np.prod(shape))

    def _block(self, name: str, h):
        silu, block = self.torch.nn.functional.silu, self.blocks[name]
        out = h
        for step, _ in BLOCK_STEPS:
            out = getattr(block, step)(silu(out))
        return h + out

    def _head(self, name: str, h):
        """A head's (mean, log_var), the log-variance at most `LOG_VAR_CEILING`."""
        mean, log_var = self.convs[name](h).chunk(2, dim=1)
        return mean, self.torch.clamp(log_var, max=LOG_VAR_CEILING)

    def features(self, batch) -> list:
        """The bottom-up activations at every resolution below the image's, finest first."""
        functional = self.torch.nn.functional
        h = self._block("bottom_up_0", self.convs["stem"](batch))
        features = []
        for r in range(1, len(self.sides)):
            h = self._block(f"bottom_up_{r}", functional.avg_pool2d(h, 2))
            features.append(h)
        return features

    def neg_elbo(self, batch, noise: list):
        """−ELBO per example for the noise ε of each level ([N, c, h, w], level 1 first)."""
        torch, functional = self.torch, self.torch.nn.functional
        features, top = self.features(batch), len(self.maps) - 1
        mean, log_var = self._head(f"posterior_{top + 1}", features[-1])
        z = mean + torch.exp(0.5 * log_var) * noise[top]
        kl = 0.5 * torch.sum(mean.pow(2) + log_var.exp() - 1 - log_var, dim=(1, 2, 3))
        state = self.convs[f"z_projection_{top + 1}"](z) + self.top_map
        for level in range(top, -1, -1):
            if level < top:
                prior_mean, prior_log_var = self._head(f"prior_{level + 1}", state)
                feature = features[self.maps[level].resolution - 1]
                delta_mean, delta_log_var = self._head(f"posterior_{level + 1}",
                                                       torch.cat([state, feature], dim=1))
                mean, log_var = prior_mean + delta_mean, prior_log_var + delta_log_var
                z = mean + torch.exp(0.5 * log_var) * noise[level]
                kl = kl + 0.5 * torch.sum(prior_log_var - log_var - 1 + (
                    log_var.exp() + (mean - prior_mean).pow(2)) * torch.exp(-prior_log_var),
                    dim=(1, 2, 3))
                state = state + self.convs[f"z_projection_{level + 1}"](z)
            state = self._block(f"top_down_{level + 1}", state)
            finer = self.maps[level - 1].resolution if level else 0
            if finer != self.maps[level].resolution:
                state = functional.interpolate(state, scale_factor=2, mode="bilinear",
                                               align_corners=False)
        parameters = self.convs["parameters"](functional.silu(self._block("output_block",
                                                                            state)))
        return logistic_neg_log_prob(torch, batch, parameters, self.components) + kl

    def epoch(self) -> float:
        torch = self.torch
        start = time.perf_counter()
        for batch in self.x[torch.randperm(len(self.x))].split(self.batch_size):
            noise = [torch.randn(len(batch), m.channels, m.height, m.width)
                     for m in self.maps]
            loss = self.neg_elbo(batch, noise).mean()
            self.optimizer.zero_grad()
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.parameters,
                                                  CLIP_NORM_PER_DIMENSION * self.dimensions)
            if torch.isfinite(norm) and norm < SKIP_NORM_PER_DIMENSION * self.dimensions:
                self.optimizer.step()
        return time.perf_counter() - start


def _spatial_modules(nn, maps, resolution_count: int, channels: int, width: int,
                     components: int):
    """(convolutions, residual blocks), dicts by their Keras names (plain dicts: a
    ModuleDict refuses the name "parameters"); the heads that Keras starts at zero start
    at zero here too, as does every block's last convolution."""
    convs = {"stem": nn.Conv2d(channels, width, 3, padding=1),
             "parameters": nn.Conv2d(width, channels * 3 * components, 1)}
    top = len(maps) - 1
    for i, level in enumerate(maps):
        reads = width if i == top else 2 * width
        convs[f"posterior_{i + 1}"] = nn.Conv2d(reads, 2 * level.channels, 3, padding=1)
        convs[f"z_projection_{i + 1}"] = nn.Conv2d(level.channels, width, 1)
        if i < top:
            convs[f"prior_{i + 1}"] = nn.Conv2d(width, 2 * level.channels, 3, padding=1)
            for name in (f"prior_{i + 1}", f"posterior_{i + 1}"):
                nn.init.zeros_(convs[name].weight)
                nn.init.zeros_(convs[name].bias)
    names = ([f"bottom_up_{r}" for r in range(resolution_count)]
             + [f"top_down_{i + 1}" for i in range(len(maps))] + ["output_block"])
    return convs, {name: _block(nn, width) for name in names}


def _block(nn, width: int):
    inner = max(1, width // BOTTLENECK)
    sizes = {"reduce": (width, inner), "conv_a": (inner, inner), "conv_b": (inner, inner),
             "expand": (inner, width)}
    block = nn.Module()
    for step, kernel in BLOCK_STEPS:
        conv = nn.Conv2d(*sizes[step], kernel, padding=kernel // 2)
        setattr(block, step, conv)
    nn.init.zeros_(block.expand.weight)
    nn.init.zeros_(block.expand.bias)
    return block
