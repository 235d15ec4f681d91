"""Export of a trained VAE for TF Serving (SavedModel), onnxruntime (fp32 and int8 ONNX)
and LiteRT, verified against the Keras model: `export.pipeline.export_model`, or the
command `python -m export RUN_DIR`. `export/` depends on `keras_vae`, never the reverse.

This file imports nothing, so that `python -m export` can refuse bad arguments before
TensorFlow loads.
"""
