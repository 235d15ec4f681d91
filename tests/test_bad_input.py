"""Every TensorFlow command answers bad input with one line on stderr, exit code 2 (usage)
or 1 (runtime), no traceback, and no change to anything already on disk: one table for
train, evaluate, plot and export, run in-process through the same `run_command` wrapper
that their `python -m` entry points use. The standalone scripts keep their tables beside
their other tests (tests/test_serving_sample.py, tests/test_tf_serving.py).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from export.__main__ import main as export_main
from keras_vae.evaluate import main as evaluate_main
from keras_vae.plot import main as plot_main
from keras_vae.run.cli import run_command
from keras_vae.train import main as train_main

SHARED_TFDS = os.environ.get("TFDS_DATA_DIR")


def _snapshot(root) -> dict:
    return {os.path.relpath(os.path.join(d, f), root): (os.path.getsize(os.path.join(d, f)),
                                                         os.stat(os.path.join(d, f)).st_mtime_ns)
            for d, _, files in os.walk(root) for f in files}


@pytest.fixture
def workspace(tmp_path, trained_run):
    """A copy of a trained run, a plain file, a corrupt checkpoint run, a checkpoint without
    its config.json, a run written by another version, and a damaged copy of the TFDS
    data."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (tmp_path / "a_file").write_text("not a directory")
    corrupt = tmp_path / "corrupt_run"
    corrupt.mkdir()
    data = (run / "best.keras").read_bytes()
    (corrupt / "best.keras").write_bytes(data[: len(data) // 3])
    shutil.copy(run / "config.json", corrupt / "config.json")
    no_settings = tmp_path / "no_settings"
    no_settings.mkdir()
    shutil.copy(run / "best.keras", no_settings / "best.keras")
    other_version = tmp_path / "other_version"
    shutil.copytree(run, other_version)
    settings = json.loads((other_version / "config.json").read_text())
    settings["setting_from_the_future"] = 1
    (other_version / "config.json").write_text(json.dumps(settings))
    other_arch = tmp_path / "other_arch"
    other_arch.mkdir()
    stored = json.loads((run / "config.json").read_text())
    stored["model"]["latent_dim"] = 16
    (other_arch / "config.json").write_text(json.dumps(stored))
    if SHARED_TFDS and os.path.isdir(os.path.join(SHARED_TFDS, "binarized_mnist")):
        damaged = tmp_path / "damaged_tfds"
        shutil.copytree(os.path.join(SHARED_TFDS, "binarized_mnist"),
                        damaged / "binarized_mnist")
        for record in (damaged / "binarized_mnist" / "1.0.0").glob("*train.tfrecord*"):
            record.write_bytes(record.read_bytes()[:100_000])  # truncated mid-record
    never_trained = tmp_path / "never_trained"  # a data load failed: only config.json
    never_trained.mkdir()
    shutil.copy(run / "config.json", never_trained / "config.json")
    locked = tmp_path / "locked"
    shutil.copytree(run, locked)
    (locked / ".lock").write_text(str(os.getppid()))  # a live process: pytest's parent
    (tmp_path / "empty_tfds" / "mnist").mkdir(parents=True)
    return tmp_path


TRAIN = "keras_vae.train"
CASES = [
    # (command, args (w = workspace), exit code, message fragment)
    (TRAIN, lambda w: ["--epochs", "0", "--out", f"{w}/new"], 2, "'0' must be at least 1"),
    (TRAIN, lambda w: ["--learning-rate", "fast", "--out", f"{w}/new"], 2, "is not a number"),
    (TRAIN, lambda w: ["--batch-size", "-5", "--out", f"{w}/new"], 2, "must be at least 1"),
    (TRAIN, lambda w: ["--dataset", "no_such_set", "--out", f"{w}/new"], 2,
     "unknown dataset 'no_such_set'"),
    (TRAIN, lambda w: ["--dataset", "fashion-mnist", "--out", f"{w}/new"], 2,
     "unknown dataset 'fashion-mnist': did you mean fashion_mnist "),
    (TRAIN, lambda w: ["--dataset", "folder:~/keras-vae-no-such-photos", "--out",
                       f"{w}/new"], 2,
     f"folder:{os.path.expanduser('~')}/keras-vae-no-such-photos: no such directory"),
    (TRAIN, lambda w: ["--dataset", f"npz:{w}/missing.npz", "--out", f"{w}/new"], 2,
     "missing.npz: no such file"),
    (TRAIN, lambda w: ["--strategy", "tpu", "--out", f"{w}/new"], 2, "invalid choice"),
    (TRAIN, lambda w: ["--out", f"{w}/a_file"], 2, "is a file, not a directory"),
    (TRAIN, lambda w: ["--out", "/proc/keras-vae-run"], 2, "cannot create run directory"),
    (TRAIN, lambda w: ["--dataset", "binarized_mnist", "--out", f"{w}/run"], 2,
     "holds a finished run"),
    (TRAIN, lambda w: ["--dataset", "binarized_mnist", "--latent-dim", "4",
                       "--out", f"{w}/other_arch"], 2,
     "other settings: max_examples 1000 (now None), latent_dim 16 (now 4), hidden_dims [64] "
     "(now [400]);"),
    (TRAIN, lambda w: ["--dataset", "binarized_mnist", "--latent-dim", "16", "--arch", "conv",
                       "--out", f"{w}/other_arch"], 2,
     "other settings: max_examples 1000 (now None), hidden_dims [64] (now [400]), arch 'mlp' "
     "(now 'conv');"),
    # refused before the data load: with no data at hand, the settings are what is named
    (TRAIN, lambda w: ["--dataset", "binarized_mnist", "--data-dir", f"{w}/empty_tfds",
                       "--latent-dim", "16", "--out", f"{w}/other_arch"], 2,
     "other settings: max_examples 1000 (now None), hidden_dims [64] (now [400]);"),
    (TRAIN, lambda w: ["--resume", "--overwrite", "--out", f"{w}/run"], 2, "exclude each other"),
    (TRAIN, lambda w: ["--dataset", "binarized_mnist", "--latent-dim", "4", "--hidden-dims",
                       "64", "--max-examples", "1000", "--out", f"{w}/run", "--resume"], 2,
     "is finished and kept no resume state (backup/ is removed when a run completes"),
    (TRAIN, lambda w: ["--arch", "rnn", "--out", f"{w}/new"], 2, "invalid choice: 'rnn'"),
    (TRAIN, lambda w: ["--objective", "iwae", "--iwae-k", "0", "--out", f"{w}/new"], 2,
     "'0' must be at least 1"),
    (TRAIN, lambda w: ["--iwae-k", "5", "--out", f"{w}/new"], 2, "applies to --objective iwae"),
    (TRAIN, lambda w: ["--kl-warmup-epochs", "-1", "--out", f"{w}/new"], 2,
     "must be at least 0"),
    (TRAIN, lambda w: ["--lr-schedule", "step", "--out", f"{w}/new"], 2, "invalid choice"),
    (TRAIN, lambda w: ["--early-stopping-patience", "x", "--out", f"{w}/new"], 2,
     "'x' is not a whole number"),
    (TRAIN, lambda w: ["--prior", "normal", "--pseudo-inputs", "50", "--out", f"{w}/new"],
     2, "applies to --prior vamp"),
    (TRAIN, lambda w: ["--prior", "vamp", "--pseudo-inputs", "0", "--out", f"{w}/new"], 2,
     "'0' must be at least 1"),
    (TRAIN, lambda w: ["--prior", "mog", "--out", f"{w}/new"], 2, "invalid choice: 'mog'"),
    (TRAIN, lambda w: ["--conditional", "--prior", "vamp", "--out", f"{w}/new"], 2,
     "--conditional does not support --prior vamp"),
    (TRAIN, lambda w: ["--dataset", "binarized_mnist", "--conditional", "--max-examples",
                       "200", "--out", f"{w}/new"], 2,
     "--conditional needs labelled data, and binarized_mnist has no labels"),
    (TRAIN, lambda w: ["--dataset", "binarized_mnist", "--latent-dim", "4", "--hidden-dims",
                       "64", "--prior", "vamp", "--out", f"{w}/run", "--resume"], 2,
     "other settings: max_examples 1000 (now None), prior 'normal' (now 'vamp'), pseudo_inputs "
     "0 (now 500);"),
    (TRAIN, lambda w: ["--dataset", "mnist", "--data-dir", f"{w}/empty_tfds",
                       "--out", f"{w}/new"], 1, "is not prepared in"),
    (TRAIN, lambda w: ["--dataset", "mnist", "--data-dir", f"{w}/empty_tfds/mnist",
                       "--out", f"{w}/new"], 1,
     "looks like the dataset's own folder: pass its parent"),
    ("keras_vae.plot", lambda w: [f"{w}/missing"], 2, "missing: no such directory"),
    ("keras_vae.plot", lambda w: [f"{w}/empty_tfds"], 2, "has no best.keras"),
    ("keras_vae.plot", lambda w: [f"{w}/never_trained"], 2,
     "its training never completed an epoch"),
    ("keras_vae.plot", lambda w: [f"{w}/locked"], 2, "is being trained by process"),
    ("keras_vae.evaluate", lambda w: [f"{w}/locked"], 2, "is being trained by process"),
    ("export", lambda w: [f"{w}/locked"], 2, "is being trained by process"),
    ("keras_vae.plot", lambda w: [f"{w}/corrupt_run"], 1, "damaged or from another"),
    ("keras_vae.plot", lambda w: [f"{w}/other_version"], 1, "written by another version"),
    ("keras_vae.evaluate", lambda w: [f"{w}/missing"], 2, "missing: no such directory"),
    ("keras_vae.evaluate", lambda w: [f"{w}/run", "--k", "0"], 2, "must be at least 1"),
    ("keras_vae.evaluate", lambda w: [f"{w}/corrupt_run"], 1, "damaged or from another"),
    ("keras_vae.evaluate", lambda w: [f"{w}/other_version"], 1, "written by another version"),
    ("keras_vae.evaluate", lambda w: [f"{w}/no_settings"], 1, "config.json is missing"),
    ("export", lambda w: [f"{w}/missing"], 2, "missing: no such directory"),
    ("export", lambda w: [], 2, "the following arguments are required: run_dir"),
    ("export", lambda w: [f"{w}/corrupt_run"], 1, "damaged or from another version"),
    ("export", lambda w: [f"{w}/run", "--export-dir", f"{w}/a_file"], 2, "is a file"),
    ("export", lambda w: [f"{w}/run", "--export-dir", "/proc/keras-vae"], 2,
     "cannot create export directory"),
]
if SHARED_TFDS:
    CASES.append((TRAIN, lambda w: ["--dataset", "binarized_mnist", "--data-dir",
                                    f"{w}/damaged_tfds", "--out", f"{w}/new"], 1,
                  "is damaged or truncated"))

MAINS = {TRAIN: train_main, "keras_vae.evaluate": evaluate_main, "keras_vae.plot": plot_main,
         "export": export_main}


@pytest.mark.parametrize("command, make_args, code, message", CASES,
                         ids=[f"{c[0]}:{c[3]}" for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(workspace, capsys, command, make_args,
                                                   code, message):
    before = _snapshot(workspace)
    args = make_args(workspace)
    assert run_command(MAINS[command], command, args) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{command}: error: "), err
    assert message in err and "Traceback" not in err
    after = _snapshot(workspace)
    changed = {path for path, stat in before.items() if after.get(path) != stat}
    assert not changed, changed
