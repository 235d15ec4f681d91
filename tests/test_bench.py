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


@pytest.mark.slow
def test_a_quick_look_trains_on_few_examples_and_says_so(tmp_path, capsys):
    """--max-examples shrinks the training sets to a quick look (here of the conv part,
    the quicker), and the report says its figures are not comparable."""
    import json

    from keras_vae.bench import main
    from keras_vae.cli import run_command

    out = tmp_path / "bench.json"
    assert run_command(main, "keras_vae.bench", ["--epochs", "2", "--max-examples", "512",
                                                 "--only", "conv", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "a quick look on 512 examples per split" in printed
    result = json.loads(out.read_text())
    assert result["max_examples"] == 512 and result["conv_32x32x3"]["examples"] == 512
    assert result["conv_32x32x3"]["keras_no_xla_examples_per_s"] > 0
