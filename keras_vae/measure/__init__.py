"""Measurement: the importance-sampled likelihood, anomaly scores and their development
sets, the pictures, and the classifier that judges samples.
"""
