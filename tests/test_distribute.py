"""Specification of keras_vae/run/distribute.py: tf.distribute training is the same training."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from keras_vae.run import distribute
from keras_vae.run.cli import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.parametrize("levels", ["8", "8,4"], ids=["one level", "hierarchy"])
def test_mirrored_over_two_devices_follows_the_one_device_loss_curve(levels):
    """Same seed, same global batch, the default shuffled pipeline: the same training to
    float tolerance (the same example order, the loss scaled by the global batch, each
    example keeping its ε). 1,000 examples per split, not a multiple of the batch of 128:
    under either strategy the evaluated loss is the mean over the split's examples."""
    result = subprocess.run([sys.executable, "-m", "tests.distributed_losses", "1000", levels],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    curves = json.loads(result.stdout.strip().splitlines()[-1])
    assert curves["one_device"]["replicas"] == 1 and curves["mirrored"]["replicas"] == 2
    for metric in ("loss", "reconstruction", "kl", "val_loss"):
        np.testing.assert_allclose(curves["mirrored"][metric], curves["one_device"][metric],
                                   rtol=1e-5, err_msg=metric)
    assert curves["mirrored"]["loss"][-1] < 0.9 * curves["mirrored"]["loss"][0]
    if levels != "8":
        assert curves["mirrored"]["skipped_updates"] == curves["one_device"]["skipped_updates"]
        return
    for strategy in ("one_device", "mirrored"):
        assert curves[strategy]["deterministic_evaluation"] == pytest.approx(
            curves[strategy]["deterministic_mean_over_examples"], rel=1e-5), strategy


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _two_workers(flags: list[str], run_dirs: list, worker_tmp) -> tuple[list[int], list[str]]:
    """Two training processes on one loopback cluster, worker i writing to run_dirs[i]
    (the chief's --out on a filesystem every worker mounts, when both are the same):
    their exit codes and what each printed (stdout, then stderr)."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    processes = [subprocess.Popen(
        [sys.executable, "-m", "tests.train_in_subprocess", *flags, "--hidden-dims", "64",
         "--batch-size", "128", "--strategy", "multi_worker", "--no-jit", "--no-export",
         "--verbose", "0", "--out", str(run_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(worker_tmp),
             "TF_CONFIG": json.dumps({"cluster": cluster,
                                      "task": {"type": "worker", "index": i}})})
        for i, run_dir in enumerate(run_dirs)]
    outputs = ["\n".join(p.communicate(timeout=600)) for p in processes]
    return [p.returncode for p in processes], outputs


def _labelled_npz(path) -> str:
    """Two classes of 8×8 pictures, each noisy copies of its own pattern."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 1024)
    patterns = rng.random((2, 8, 8, 1)) < 0.3
    images = patterns[labels] ^ (rng.random((1024, 8, 8, 1)) < 0.05)
    np.savez(path, images=images.astype(np.uint8) * 255, labels=labels,
             label_names=np.array(["one", "two"]))
    return f"npz:{path}"


@pytest.mark.slow
@pytest.mark.parametrize("conditional", [False, True],
                         ids=["one level", "conditional hierarchy"])
def test_two_workers_train_together_and_only_the_chief_writes(binarized_mnist_source,
                                                              tmp_path, conditional):
    """A conditional model's batches are (images, labels): Keras 3.15's distributed build
    reduced them as one value and failed under MultiWorkerMirroredStrategy. Keras builds
    a model under a strategy by calling it on the data's x alone (here the images without
    their labels) unless it is already built (tests/test_model.py checks that every model
    is), and the conditional hierarchy's guarded update must choose once for every
    replica: this case covers both for any mirrored strategy."""
    run_dir, worker_tmp = tmp_path / "run", tmp_path / "worker-tmp"
    worker_tmp.mkdir()
    data = (["--dataset", _labelled_npz(tmp_path / "classes.npz"), "--conditional",
             "--latent-dim", "4,2"] if conditional
            else ["--dataset", "binarized_mnist", "--latent-dim", "4"])
    codes, outputs = _two_workers([*data, "--epochs", "1", "--max-examples", "1024"],
                                  [run_dir, run_dir], worker_tmp)
    assert codes == [0, 0], outputs
    with open(run_dir / "summary.json") as f:
        summary = json.load(f)
    assert (summary["strategy"], summary["replicas"], summary["per_replica_batch"]) == (
        "multi_worker", 2, 64)
    for path in summary["artifacts"].values():
        assert (run_dir / path).exists(), path
    assert not [p for p in worker_tmp.iterdir() if p.name.startswith("keras-vae-worker-")]
    assert "2 replica(s), global batch 128, per-replica batch 64" in outputs[1]
    assert ("class_prior_fit" in summary) is conditional


@pytest.mark.slow
def test_every_worker_resumes_from_the_chief_s_epoch_or_none_starts(tmp_path):
    """A worker other than the chief trains in a temporary directory; resuming, it starts
    from a copy of the chief's backup. Before that it started from scratch beside a
    resuming chief, and their collectives failed once the epoch counts parted. A worker
    that cannot see the chief's run (its --out elsewhere) is refused, on every worker, in
    one line, before anything trains."""
    run_dir, worker_tmp = tmp_path / "run", tmp_path / "worker-tmp"
    worker_tmp.mkdir()
    flags = ["--dataset", "binarized_mnist", "--latent-dim", "4", "--max-examples", "256",
             "--keep-backup"]
    codes, outputs = _two_workers([*flags, "--epochs", "1"], [run_dir, run_dir], worker_tmp)
    assert codes == [0, 0], outputs
    metrics = (run_dir / "metrics.csv").read_text()

    codes, outputs = _two_workers([*flags, "--epochs", "2", "--resume"],
                                  [run_dir, tmp_path / "elsewhere"], worker_tmp)
    assert codes == [2, 2], outputs
    for output in outputs:
        assert "the workers see different completed epochs" in output
        assert "(1, 0, in task order)" in output and "Traceback" not in output
    assert (run_dir / "metrics.csv").read_text() == metrics

    codes, outputs = _two_workers([*flags, "--epochs", "2", "--resume"],
                                  [run_dir, run_dir], worker_tmp)
    assert codes == [0, 0], outputs
    assert "after epoch 1 (from backup/)" in outputs[1]
    with open(run_dir / "summary.json") as f:
        assert json.load(f)["epochs_completed"] == 2
    assert not [p for p in worker_tmp.iterdir() if p.name.startswith("keras-vae-worker-")]


def test_one_process_is_its_own_only_worker_and_differing_starts_are_refused():
    """Without several workers nothing is gathered; with them, equal epochs pass."""
    from keras_vae.run.resume import refuse_different_starts

    assert distribute.value_on_each_worker(distribute.make_strategy("one_device"), 3) == [3]
    refuse_different_starts([2, 2], "runs/r1")
    with pytest.raises(UsageError, match=r"in runs/r1 \(2, 0, in task order\)"):
        refuse_different_starts([2, 0], "runs/r1")


def test_global_batch_must_split_evenly():
    assert distribute.per_replica_batch(128, 2) == 64
    with pytest.raises(UsageError, match="does not split evenly over 3 replicas"):
        distribute.per_replica_batch(128, 3)


@pytest.mark.parametrize("tf_config, chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}},
     False),
    ({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "chief", "index": 0}},
     True),
])
def test_only_the_chief_writes(monkeypatch, tf_config, chief):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert distribute.is_chief() is chief


@pytest.mark.parametrize("value", ["not json", '{"task": {"type": "worker"}}',
                                   '{"cluster": {"worker": []}, "task": {"type": "chief"}}'])
def test_invalid_tf_config_is_a_usage_error(monkeypatch, value):
    monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(UsageError, match="TF_CONFIG is not valid"):
        distribute.make_strategy("multi_worker")
