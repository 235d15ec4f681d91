"""`--strategy`: which tf.distribute strategy trains the model, and who writes files.

- `one_device`: the default strategy (one GPU if present, else the CPU).
- `mirrored`: MirroredStrategy over all local GPUs; without GPUs, over the logical CPU
  devices (one unless configured, as the tests do to check the arithmetic).
- `multi_worker`: MultiWorkerMirroredStrategy configured by the standard TF_CONFIG
  environment variable; every worker runs the same command.
- `auto`: multi_worker if TF_CONFIG is set, mirrored if there are several GPUs, else
  one_device.

`--batch-size` is the global batch; each replica gets batch / replicas. Only the chief
writes the run directory; other workers write to a temporary directory removed at exit.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from keras_vae.config import STRATEGIES
from keras_vae.run.cli import UsageError

__all__ = ["STRATEGIES", "is_chief", "make_strategy", "per_replica_batch", "resolve",
           "value_on_each_worker"]


def resolve(name: str) -> str:
    if name != "auto":
        return name
    if os.environ.get("TF_CONFIG"):
        return "multi_worker"
    return "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "one_device"


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy for `name`; create it before any other TensorFlow work (workers
    connect to each other when MultiWorkerMirroredStrategy is built)."""
    name = resolve(name)
    if name == "one_device":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if not os.environ.get("TF_CONFIG"):
        raise UsageError("--strategy multi_worker needs the TF_CONFIG environment variable "
                         "(cluster and task); see the README's cluster section")
    _task()  # validates TF_CONFIG before TensorFlow tries to use it
    return tf.distribute.MultiWorkerMirroredStrategy()


def _task() -> dict:
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}"))
        task = config.get("task", {})
        config["cluster"][task["type"]]
        return task
    except (ValueError, KeyError, TypeError):
        raise UsageError("TF_CONFIG is not valid: it must be JSON with 'cluster' and a "
                         "'task' {type, index} naming one of the cluster's jobs") from None


def is_chief() -> bool:
    """The chief writes: task 'chief', or worker 0 when the cluster has no chief."""
    if not os.environ.get("TF_CONFIG"):
        return True
    task = _task()
    cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]
    if "chief" in cluster:
        return task["type"] == "chief"
    return task["type"] == "worker" and int(task.get("index", 0)) == 0


def value_on_each_worker(strategy: tf.distribute.Strategy, value: int) -> list[int]:
    """`value` as every worker has it, in task order (this process's alone unless several
    workers train). A collective: every worker must call it at the same point."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return [value]

    @tf.function  # run eagerly, the strategy logs a warning about its overhead
    def gather():
        per_replica = strategy.run(lambda: tf.constant([value], tf.int64))
        return strategy.gather(per_replica, axis=0)

    return [int(v) for v in gather().numpy()]


def per_replica_batch(batch_size: int, replicas: int) -> int:
    if batch_size % replicas:
        raise UsageError(f"--batch-size {batch_size} does not split evenly over {replicas} "
                         f"replicas; pass a multiple of {replicas}")
    return batch_size // replicas
