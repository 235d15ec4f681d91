"""Specification of `python -m keras_vae.bench`: its arguments, checked before TensorFlow loads."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("epochs", ["1"])
def test_one_epoch_is_refused_because_it_would_time_compilation(epochs, capsys):
    from keras_vae.bench import main
    from keras_vae.cli import run_command

    assert run_command(main, "keras_vae.bench", ["--epochs", epochs]) == 2
    assert "--epochs must be at least 2" in capsys.readouterr().err


def test_help_answers_without_loading_tensorflow():
    import subprocess
    import sys

    probe = ("import sys, runpy; sys.argv = ['bench', '--help']\n"
             "try:\n    runpy.run_module('keras_vae.bench', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "False"
