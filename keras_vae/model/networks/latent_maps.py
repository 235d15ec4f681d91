"""Where a spatial model's latent levels sit: feature maps at several resolutions.

`--arch spatial` (`keras_vae.model.networks.spatial`) halves the image, rounding odd sides
up, until its shorter side is at most `SMALLEST_SIDE`: 28 → 14 → 7 → 4, 32 → 16 → 8 → 4,
64 → 32 → 16 → 8 → 4. Every resolution below the image's own holds latent maps: one at
the lowest (the top level), `LEVELS_PER_RESOLUTION` at each of the others, so a 28×28
model has maps of 14×14 (two), 7×7 (two) and 4×4 (one). None sits at the image's own
resolution: those would cost the most and, in VDVAE's and NVAE's models, hold least.

A level's noise and z travel flat, [N, h·w·c] in (row, column, channel) order, so that
everything a hierarchy does with its levels — the concatenated noise of the sampling
contract, the densities, the evaluation — is the same for maps as for vectors.

This module imports no TensorFlow (the run record reads it).
"""

from __future__ import annotations

from dataclasses import dataclass

SMALLEST_SIDE = 4
LEVELS_PER_RESOLUTION = 2
DEFAULT_LATENT_CHANNELS = 8
"""Channels of every latent map unless `--latent-dim` says otherwise."""
DEFAULT_WIDTH = 64
"""Channels of the residual stream unless `--hidden-dims` says otherwise."""


@dataclass(frozen=True)
class LatentMap:
    """One latent level: a map of `height`×`width`×`channels` at `resolution` (0 is the
    image's own, each next one half the last)."""

    resolution: int
    height: int
    width: int
    channels: int

    @property
    def size(self) -> int:
        return self.height * self.width * self.channels

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.height, self.width, self.channels


def resolutions(height: int, width: int) -> list[tuple[int, int]]:
    """The sides of each resolution, the image's own first: halved (odd sides rounded
    up) until the shorter is at most `SMALLEST_SIDE`, at least once."""
    sides = [(height, width)]
    while len(sides) == 1 or min(sides[-1]) > SMALLEST_SIDE:
        h, w = sides[-1]
        sides.append((-(-h // 2), -(-w // 2)))
    return sides


def latent_maps(image_shape, channels) -> list[LatentMap]:
    """The levels of a spatial model of images of `image_shape`, nearest the image first.

    Args:
        image_shape: (height, width, channels) of the data.
        channels: the latent maps' channels: one number for every resolution, or one per
            resolution that holds latents, nearest the image first.

    Raises:
        ValueError: `channels` names another number of resolutions.
    """
    sides = resolutions(*image_shape[:2])
    held = range(1, len(sides))  # every resolution but the image's own
    per_resolution = tuple(channels) if isinstance(channels, (tuple, list)) else (channels,)
    if len(per_resolution) == 1:
        per_resolution = per_resolution * len(held)
    if len(per_resolution) != len(held):
        raise ValueError(
            f"{len(per_resolution)} latent channel counts for {len(held)} resolutions "
            f"({', '.join(f'{h}×{w}' for h, w in sides[1:])}); give one, or one each")
    maps = []
    for resolution, count in zip(held, per_resolution, strict=True):
        levels = 1 if resolution == len(sides) - 1 else LEVELS_PER_RESOLUTION
        maps += [LatentMap(resolution, *sides[resolution], count)] * levels
    return maps


def resolution_text(image_shape) -> str:
    """"14×14, 7×7, 4×4": the resolutions that hold latents, nearest the image first."""
    return ", ".join(f"{h}×{w}" for h, w in resolutions(*image_shape[:2])[1:])

