"""The VAE and its parts: the one model class (`vae.py`), what a trained model computes
(`graphs.py`), its stochastic layers, priors, densities and guarded update; the networks
of its levels (`networks/`) and the pixel likelihoods (`likelihoods/`).
"""
