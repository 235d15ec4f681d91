"""The precision part of `python -m keras_vae.bench`: how fast each network trains under
each `--precision` on this CPU, and which bfloat16 instructions the CPU has.

A CPU can only gain from bfloat16 where it multiplies in it natively: Intel's AMX tiles,
or AVX-512 BF16's dot products. Even there the gain is the matmuls' and convolutions' share
of a step, which this part measures rather than assumes (docs/training.md). float16 is
for GPUs and is not timed.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from keras_vae.benchmarks.spatial_speed import spatial_config
from keras_vae.benchmarks.training_speed import COLOUR_SHAPE, colour_split, matmul_roofline
from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.data.pipeline import Split, make_dataset
from keras_vae.run.callbacks import EpochSeconds
from keras_vae.run.machine import cpu_bfloat16_support
from keras_vae.run.training import build_model

TIMED_PRECISIONS = ("float32", "mixed_bfloat16")
PRECISION_EXAMPLES = 2048
"""Random 32×32×3 8-bit images per epoch: 32 updates of the spatial network's batch."""


def default_colour_config() -> TrainConfig:
    """What `python -m keras_vae.train` trains on 32×32×3 8-bit images by default."""
    return TrainConfig(dataset="npz:random", model=ModelConfig()).for_data(COLOUR_SHAPE,
                                                                          "8-bit")


def precision_side_by_side(rounds: int = 3, examples: int = PRECISION_EXAMPLES,
                           roofline_seconds: float = 3.0) -> dict:
    """The default network and `--arch spatial` on random 32×32×3 8-bit images (their
    content does not change a step's cost), each in float32 and mixed bfloat16, one epoch
    of each precision in turn after a warm-up epoch each, so both see the same machine
    conditions; median examples/s per precision. Beside them the matmul roofline in each
    dtype: what the CPU's bfloat16 instructions could give."""
    split = colour_split(examples)
    networks = {"default": default_colour_config(), "spatial": spatial_config()}
    return {"cpu_bfloat16": cpu_bfloat16_support(),
            "matmul_roofline_gflops": {dtype: matmul_roofline(seconds=roofline_seconds, dtype=dtype)
                                       for dtype in ("float32", "bfloat16")},
            "image_shape": list(COLOUR_SHAPE),
            "examples": examples, "rounds": rounds,
            "networks": {name: _alternate_precisions(config, split, rounds)
                         for name, config in networks.items()}}


def _alternate_precisions(config: TrainConfig, split: Split, rounds: int) -> dict:
    data = make_dataset(split, config.batch_size, shuffle_seed=config.seed)
    timers, models = {}, {}
    for precision in TIMED_PRECISIONS:
        keras.utils.set_random_seed(config.seed)
        models[precision] = build_model(dataclasses.replace(config, precision=precision))
        timers[precision] = EpochSeconds()
    for _ in range(rounds + 1):  # the first round: tracing, compilation, warm-up
        for precision, vae in models.items():
            vae.fit(data, epochs=1, callbacks=[timers[precision]], verbose=0, shuffle=False)
    rates = {precision: len(split) / float(np.median(timer.seconds[1:]))
             for precision, timer in timers.items()}
    return {"arch": config.model.arch, "batch_size": config.batch_size,
            "jit_compile": config.jit_compile,
            "compute_dtypes": {precision: vae.dtype_policy.compute_dtype
                               for precision, vae in models.items()},
            **{f"{precision}_examples_per_s": rate for precision, rate in rates.items()},
            "bfloat16_speedup": rates["mixed_bfloat16"] / rates["float32"]}
