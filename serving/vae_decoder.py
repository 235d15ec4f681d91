"""An exported decoder in onnxruntime: opening it and refusing a file that is not the
decoder asked for, its class names and the --label asked of them, and decoding.
onnxruntime is imported only to open a model.
"""

from __future__ import annotations

import difflib
import json
import os

import numpy as np

if __package__:  # imported as part of the serving package
    from serving.vae_cli import SampleError
    from serving.vae_draws import CONTRACT, decoder_feed
else:  # run from the folder that holds sample.py
    from vae_cli import SampleError
    from vae_draws import CONTRACT, decoder_feed


LATENT_INPUTS = ("z", "label")
"""latent_decoder.onnx's inputs: a given z, and a conditional model's label."""

EXPORT_AGAIN = "export it again with `python -m export RUN`"

CLASS_ROW_LENGTH = 10
"""Images per class row when a conditional model is drawn without --label."""



def load_decoder(path: str, threads: int | None = None, given_z: bool = False):
    """Opens an ONNX decoder and returns (onnxruntime session, latent_dim), or explains
    what is wrong: decoder.onnx (the sampling contract), or with `given_z`
    latent_decoder.onnx."""
    import onnxruntime as ort

    if os.path.isdir(path):
        raise SampleError(f"{path} is a directory (a SavedModel?); this sampler runs the "
                          f"ONNX file: pass decoder.onnx from the same export")
    if not os.path.isfile(path):
        raise SampleError(f"{path}: no such file; pass the decoder.onnx of an export")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises several types for a bad file
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise SampleError(f"{path} is not a model onnxruntime can load ({reason}); pass "
                          f"decoder.onnx or decoder_int8.onnx from an export") from None
    check_decoder(session, path, given_z)
    return session, session.get_inputs()[0].shape[1]



def check_decoder(session, path: str, given_z: bool) -> None:
    """Refuses a file that is not the decoder asked for, in one line that says which file
    to pass instead."""
    names = [i.name for i in session.get_inputs()]
    role = session.get_modelmeta().custom_metadata_map.get("role")
    shape = session.get_inputs()[0].shape
    if names[0] == "z" and role is None:
        raise SampleError(f"{path} was exported by an older keras-vae (it takes z, and a "
                          f"VampPrior's prior.npz); {EXPORT_AGAIN} and pass the new decoder.onnx")
    if role == "encoder" or names[0] == "image":
        raise SampleError(f"{path} takes images: it is an encoder, not a decoder; pass "
                          f"decoder.onnx")
    latent = names[0] == "z"
    if latent and not given_z:
        raise SampleError(f"{path} decodes given latents: pass them with --latent-file "
                          f"z.npy, or sample with decoder.onnx from the same export")
    if given_z and not latent:
        raise SampleError(f"--latent-file decodes given latents with latent_decoder.onnx; "
                          f"pass that file from the same export instead of {path}")
    allowed = LATENT_INPUTS if latent else CONTRACT
    if (len(shape) != 2 or not isinstance(shape[1], int) or [n for n in names if n in allowed]
            != names or "image" not in {o.name for o in session.get_outputs()}):
        found = [f"{i.name}{list(i.shape)}" for i in session.get_inputs()]
        raise SampleError(f"{path} takes {', '.join(found)}: it is not a keras-vae "
                          f"decoder; pass decoder.onnx from an export")



def label_names(session) -> list[str] | None:
    """A conditional decoder's class names (index = label), None for an unconditional one."""
    if "label" not in {i.name for i in session.get_inputs()}:
        return None
    names = json.loads(session.get_modelmeta().custom_metadata_map.get("label_names", "[]"))
    return [str(n) for n in names]



def asked_label(text: str | None, names: list[str] | None, model: str) -> int | None:
    """--label as a class index (None when not given); refused for an unconditional
    model (`names` None), whose decoder has no label input."""
    if text is None:
        return None
    if names is None:
        raise SampleError(f"{model} is not a conditional model (it has no 'label' input); "
                          f"drop --label")
    return resolve_label(text, names)



def sample_count(n: int | None, names: list[str] | None, label: int | None) -> int:
    """--n, by default 64, or for class rows (a conditional model, no label)
    CLASS_ROW_LENGTH per class."""
    return n or (CLASS_ROW_LENGTH if names is not None and label is None else 64)



def drawn_description(names: list[str] | None, label: int | None) -> str:
    """What the picture shows, for the commands' closing line."""
    if names is None:
        return ""
    return ", one row per class" if label is None else f", class {names[label]}"



def resolve_label(text: str, names: list[str]) -> int:
    """--label: a class name (in any letter case, when that leaves one), or an index in
    [0, classes); else the closest name, if one is close, and the known names."""
    if text in names:
        return names.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
        return int(text)
    same_letters = [n for n in names if n.casefold() == text.casefold()]
    if len(same_letters) == 1:
        return names.index(same_letters[0])
    close = difflib.get_close_matches(text, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(f"{i} {n}" for i, n in enumerate(names))
    raise SampleError(f"--label {text!r} is not a class of this model{hint}; known: {known}")



def decode(session, values: np.ndarray, labels: np.ndarray | None = None,
           temperature: float = 1.0, component_draw: np.ndarray | None = None
           ) -> np.ndarray:
    """noise (or, for latent_decoder.onnx, z) [N, latent_dim] float32, a conditional
    decoder's labels int64 [N], the temperature and a mixture prior's component draws
    [N] → images [N, H, W, C], the means of p(x|z) in [0, 1]."""
    names = [i.name for i in session.get_inputs()]
    if names[0] == "z":
        feed = {"z": values.astype(np.float32),
                **({} if labels is None else {"label": labels.astype(np.int64)})}
    else:
        feed = decoder_feed(names, values, labels, temperature, component_draw)
    (image,) = session.run(["image"], feed)
    return image
