"""keras-vae: a variational autoencoder in Keras 3 that trains in one command and ships.

Modules: `config` (the run's settings), `data` (TFDS + tf.data), `model` (the VAE),
`train` (the `python -m keras_vae.train` command), `pictures` (PNG grids).
"""

__version__ = "0.1.0"
