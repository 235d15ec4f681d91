"""keras-vae: a variational autoencoder in Keras 3 that trains in one command and ships.

Commands: `python -m keras_vae.train` (train, evaluate, draw, export), `python -m
keras_vae.evaluate` (importance-sampled NLL), `python -m keras_vae.plot` (redraw a run's
pictures), `python -m keras_vae.bench` (training speed).
The model is in `model` (with its noise in `noise`), the data in `data`, the settings in
`config`; export lives in the sibling package `export/`, the consumers in `serving/`.

This file imports nothing, so that commands can refuse bad arguments quickly.
"""

__version__ = "0.1.0"
