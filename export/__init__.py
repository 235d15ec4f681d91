"""Export of a trained VAE's decoder: SavedModel for TF Serving, ONNX for onnxruntime.

`export/` depends on `keras_vae`, never the reverse. Every export is verified: the
artifacts are run on a fixed batch of z and compared with the Keras decoder.
"""

from export.decoder import DECODER_INPUT, DECODER_OUTPUTS, export_decoder

__all__ = ["DECODER_INPUT", "DECODER_OUTPUTS", "export_decoder"]
