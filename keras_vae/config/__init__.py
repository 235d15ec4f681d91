"""The one typed record of a run: `TrainConfig`, with the model's part in `ModelConfig`.

It is built once (by the CLI, or by code), validated when it is built, written to
`RUN_DIR/config.json` when the run starts, and read back by every command through
`keras_vae.run.layout.read_run_config`. Everything else that describes a run — the
summary, the ONNX metadata, the export manifest — is derived from it. A setting's
default lives here and nowhere else. This module imports no TensorFlow, so commands can
check their arguments instantly.
"""

from keras_vae.config.model import (  # noqa: F401  (the record's public names)
    DEFAULT_EIGHT_BIT_LEVELS,
    DEFAULT_IMAGE_SHAPE,
    DEFAULT_IWAE_K,
    DEFAULT_LATENT_DIM,
    DEFAULT_PSEUDO_INPUTS,
    ModelConfig,
    bits_per_dim,
)
from keras_vae.config.train import (  # noqa: F401
    DEFAULT_FPR,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_SCORE_K,
    SOURCE_PREFIXES,
    STRATEGIES,
    TrainConfig,
    default_batch_size,
    default_epochs,
    updates_per_epoch,
)
