"""Trains the same short run with one device and with MirroredStrategy over two logical CPU
devices, in one process, and prints both per-epoch loss curves as JSON. Logical devices
must be configured before TensorFlow starts, hence a separate process.

The training examples come in a fixed order: TensorFlow rewrites a dataset when a strategy
distributes it, and its seeded reshuffling then yields a different (equally random)
order, which would hide the arithmetic this compares."""

from __future__ import annotations

import json
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import keras  # noqa: E402

from keras_vae import distribute  # noqa: E402
from keras_vae.config import ModelConfig, TrainConfig  # noqa: E402
from keras_vae.data import load_splits, make_dataset  # noqa: E402
from keras_vae.train import build_model, datasets_for  # noqa: E402
from tests.conftest import binarized_mnist_data  # noqa: E402


def losses(strategy_name: str, splits) -> dict:
    config = TrainConfig(dataset="binarized_mnist", batch_size=128, jit_compile=False,
                         steps_per_execution=1,
                         model=ModelConfig(latent_dim=8, hidden_dims=(64,)))
    strategy = distribute.make_strategy(strategy_name)
    keras.utils.set_random_seed(config.seed)
    _, val_data, _ = datasets_for(config, splits)
    train_data = make_dataset(splits["train"], config.batch_size)
    with strategy.scope():
        vae = build_model(config)
    history = vae.fit(train_data, validation_data=val_data, epochs=3, verbose=0,
                      shuffle=False)
    return {"replicas": strategy.num_replicas_in_sync, **history.history}


if __name__ == "__main__":
    with binarized_mnist_data():
        data = load_splits("binarized_mnist", max_examples=int(sys.argv[1]))
        print(json.dumps({name: losses(name, data) for name in ("one_device", "mirrored")}))
