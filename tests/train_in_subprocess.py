"""Runs `keras_vae.train` in its own process on the test session's data source (real
prepared binarized_mnist, else the same mock data as the in-process tests). Used by tests
that kill, interrupt or distribute training processes."""

from __future__ import annotations

import sys

from keras_vae.run.cli import run_command
from keras_vae.train import main
from tests.conftest import binarized_mnist_data

if __name__ == "__main__":
    with binarized_mnist_data():
        code = run_command(main, "keras_vae.train")
    sys.exit(code)
