"""The model a run's record describes: the one place that picks the model class."""

from __future__ import annotations

from keras_vae.hierarchy import HierarchicalVAE
from keras_vae.model import VAE
from keras_vae.spatial import SpatialVAE


def make_vae(config) -> VAE:
    """One level (`VAE`), a dense hierarchy of several (`HierarchicalVAE`), or the spatial
    network's feature maps (`SpatialVAE`), as the `ModelConfig` says."""
    if config.spatial:
        return SpatialVAE(config)
    return HierarchicalVAE(config) if config.hierarchical else VAE(config)
