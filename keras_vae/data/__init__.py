"""Data: datasets from TFDS, folders and npz files, checked image files, where images are
held, and the tf.data pipeline.
"""
