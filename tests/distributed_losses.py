"""Trains the same short run (`python -m tests.distributed_losses EXAMPLES LEVELS`, LEVELS
"8" one level, "8,4" a hierarchy) with one device and with MirroredStrategy over two logical
CPU devices, in one process, and prints both per-epoch loss curves as JSON, with each trained
model's evaluation of its validation split beside that split's mean per-example negative
ELBO. Logical devices must be configured before TensorFlow starts, hence a separate
process.

Both use the run's own shuffled training pipeline: its per-epoch order is keyed by
(seed, epoch), so TensorFlow's rewrite of a distributed dataset does not change it."""

from __future__ import annotations

import json
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import keras  # noqa: E402

from keras_vae.config import ModelConfig, TrainConfig  # noqa: E402
from keras_vae.data.pipeline import (  # noqa: E402
    datasets_for,  # noqa: E402
    epoch_variable,
    load_splits,
)
from keras_vae.run import distribute  # noqa: E402
from keras_vae.run.callbacks import TrainingEpoch  # noqa: E402
from keras_vae.run.training import build_model  # noqa: E402
from tests.conftest import binarized_mnist_data  # noqa: E402
from tests.test_model import deterministic_neg_elbo  # noqa: E402


def losses(strategy_name: str, splits, levels: tuple[int, ...]) -> dict:
    config = TrainConfig(dataset="binarized_mnist", batch_size=128, jit_compile=False,
                         steps_per_execution=1,
                         model=ModelConfig(likelihood="bernoulli", latent_dim=levels,
                                           hidden_dims=(64,)))
    strategy = distribute.make_strategy(strategy_name)
    keras.utils.set_random_seed(config.seed)
    epoch = epoch_variable()
    train_data, val_data, _ = datasets_for(config, splits, epoch)
    with strategy.scope():
        vae = build_model(config)
    history = vae.fit(train_data, validation_data=val_data, epochs=3, verbose=0,
                      shuffle=False, callbacks=[TrainingEpoch(epoch)])
    curves = {"replicas": strategy.num_replicas_in_sync, **history.history}
    if len(levels) > 1:
        return curves  # `deterministic_neg_elbo` reads a one-level encoder
    per_example = deterministic_neg_elbo(vae, splits["validation"].as_float())
    evaluated = vae.evaluate(val_data, return_dict=True, verbose=0)["loss"]
    return {**curves, "deterministic_evaluation": evaluated,
            "deterministic_mean_over_examples": float(per_example.mean())}


if __name__ == "__main__":
    with binarized_mnist_data():
        data = load_splits("binarized_mnist", max_examples=int(sys.argv[1]))
        levels = tuple(int(size) for size in sys.argv[2].split(","))  # "8,4": a hierarchy
        print(json.dumps({name: losses(name, data, levels)
                          for name in ("one_device", "mirrored")}))
