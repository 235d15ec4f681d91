"""Benchmarks (not the product): training speed beside PyTorch twins of the same networks;
the commands are `python -m keras_vae.bench` and `.score_bench`.
"""
