"""Sample images from an exported keras-vae decoder with onnxruntime — no TensorFlow.

    python sample.py decoder.onnx --n 64 --seed 0 --out grid.png
    python sample.py decoder.onnx --latent-file z.npy --out decoded.png
    python sample.py decoder.onnx --interpolate --n 10 --seed 3 --out row.png
    python sample.py decoder_int8.onnx --threads 1 --out grid.png
    python sample.py decoder.onnx --label Sneaker --n 16 --out sneakers.png   # conditional

This file runs on its own (copy it onto a device) and needs exactly three packages, also
listed in requirements-edge.txt beside it:

    numpy, onnxruntime, Pillow

Every decoder an export writes samples from the same inputs: `noise` ε [N, latent_dim]
(drawn here from --seed), `temperature`, a conditional model's `label` and, for a prior
mixture (a VampPrior, a class's mixture), `component_draw` uniforms in [0, 1) that pick
its component, drawn from the seed too; the prior itself is inside the graph. Decoding
latents of your own (--latent-file, e.g. an encoder's z_mean) takes latent_decoder.onnx
from the same export. A decoder exported before this contract (it takes `z`) is refused
with the command that exports it again. The
picture shows the decoder's `image` output (the mean of p(x|z), [N, H, W, C] in [0, 1], at
the size and channels the model was trained on: grayscale or RGB) as the data show it, in
the format the --out name asks for (.png, .jpg, .webp, .bmp, .gif, .tif).

A conditional model (trained with --conditional; its decoder has a second input `label`)
draws the class named by --label (a name from the metadata's `label_names`, or an index);
without --label it draws one row per class, the same z in each column.
Mistakes (missing or wrong model, bad numbers, unwritable output) end in one line on
stderr and exit code 2; nothing existing is overwritten unless the new image was
completely written. onnxruntime is imported only to run a model, so the picture helpers
here need numpy and Pillow alone. This file imports nothing of keras-vae; the TF Serving
client beside it reuses its seeded draws and pictures.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import sys
from collections.abc import Sequence

import numpy as np
from PIL import Image

MAX_IMAGES = 10_000
"""Most images per call (28×28 Bernoulli decoders: 10,000 × 784 pixels × 2 float32
outputs ≈ 63 MB of output)."""

CLASS_ROW_LENGTH = 10
"""Images per class row when a conditional model is drawn without --label."""

UPSCALE = 2
"""Each pixel becomes UPSCALE×UPSCALE screen pixels so small images (28×28) are legible."""


LABEL_MARGIN = 48
"""Least width in pixels of the margin that names the rows of a picture (`named_rows`)."""

SAVE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
"""Pillow formats a picture may be written in, chosen by the --out file's extension."""


class SampleError(Exception):
    """A problem the user can fix; reported as one line."""


# --- pictures (also used by the TF Serving client) --------------------------------------

def tile(images: np.ndarray, rows: int, cols: int, gap: int = 2) -> np.ndarray:
    """Images [N, H, W, C] in [0, 1] → one canvas [rows·(H+gap)−gap, cols·(W+gap)−gap, C],
    row-major, with white gaps."""
    n, h, w, channels = images.shape
    if n > rows * cols:
        raise ValueError(f"{n} images do not fit a {rows}×{cols} grid")
    canvas = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap, channels), np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = image
    return canvas


def square_grid(images: np.ndarray) -> np.ndarray:
    """The squarest grid that holds all images, e.g. 64 → 8×8."""
    cols = math.ceil(math.sqrt(len(images)))
    return tile(images, math.ceil(len(images) / cols), cols)


def image_format(path: str) -> str:
    """Pillow's format name for the file name's extension (grid.jpg → JPEG), or explains
    which extensions work."""
    extension = os.path.splitext(path)[1].lower()
    formats = Image.registered_extensions()
    if extension not in formats or formats[extension] not in SAVE_FORMATS:
        known = ", ".join(sorted(e for e, f in formats.items() if f in SAVE_FORMATS))
        raise SampleError(f"--out {path}: cannot tell the picture format from "
                          f"{extension or 'a name without extension'!r}; end it in one of "
                          f"{known}")
    return formats[extension]


def to_image(canvas: np.ndarray) -> Image.Image:
    """A canvas [H, W, C] of pixels in [0, 1] as an 8-bit picture, as the data show them
    (1 = white): grayscale for one channel, RGB for three (other channel counts show
    their first channel), each pixel UPSCALE×UPSCALE."""
    pixels = np.round(np.clip(canvas, 0.0, 1.0) * 255).astype(np.uint8)
    if pixels.shape[-1] == 3:
        image = Image.fromarray(pixels, mode="RGB")
    else:
        image = Image.fromarray(pixels[..., 0], mode="L")
    return image.resize((image.width * UPSCALE, image.height * UPSCALE), Image.NEAREST)


def named_rows(canvas: np.ndarray, names: Sequence[str]) -> Image.Image:
    """A canvas of len(names) equal rows (`tile`) as a picture (`to_image`) with each row's
    name written in a white margin on the left, wide enough for the longest name."""
    from PIL import ImageDraw

    grid = to_image(canvas)
    measure = ImageDraw.Draw(grid)
    margin = max(LABEL_MARGIN, 8 + max(int(measure.textlength(n)) for n in names))
    picture = Image.new(grid.mode, (grid.width + margin, grid.height), "white")
    picture.paste(grid, (margin, 0))
    draw, row_height = ImageDraw.Draw(picture), grid.height / len(names)
    for i, name in enumerate(names):
        draw.text((4, (i + 0.5) * row_height), name, fill="black", anchor="lm")
    return picture


def save_picture(canvas: np.ndarray, path: str) -> None:
    """Writes a canvas in [0, 1] as a picture (`to_image`), in one rename."""
    write_image(to_image(canvas), path)


def write_image(image: Image.Image, path: str) -> None:
    """Writes a picture in one rename; PNG unless the file name asks for another format
    (`image_format`)."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                       f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        image.save(tmp, format=image_format(path))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# --- the decoder -------------------------------------------------------------------------

COMPONENT_DRAW = "component_draw"
CONTRACT = ("noise", "temperature", "label", COMPONENT_DRAW)
"""The sampling contract's inputs in order; a decoder takes the first two and those of the
others its model has (`export.endpoints`)."""
LATENT_INPUTS = ("z", "label")
"""latent_decoder.onnx's inputs: a given z, and a conditional model's label."""
EXPORT_AGAIN = "export it again with `python -m export RUN`"


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


def decoder_feed(input_names, noise: np.ndarray, labels: np.ndarray | None = None,
                 temperature: float = 1.0, component_draw: np.ndarray | None = None
                 ) -> dict:
    """The sampling contract's inputs by name, as every runtime takes them (those of
    `input_names`): noise float32 [N, latent_dim], temperature [N], a conditional
    decoder's label int64 [N] and a mixture prior's component_draw float32 [N]."""
    n = len(noise)
    values = {"noise": noise.astype(np.float32),
              "temperature": np.full(n, temperature, np.float32),
              "label": None if labels is None else np.asarray(labels, np.int64),
              COMPONENT_DRAW: (None if component_draw is None
                               else np.asarray(component_draw, np.float32))}
    missing = [name for name in input_names if values.get(name) is None]
    if missing:
        raise SampleError(f"the decoder also takes {', '.join(missing)}")
    return {name: values[name] for name in input_names}


def component_draws(input_names, n: int, seed: int, one_line: bool = False
                    ) -> np.ndarray | None:
    """n seeded uniforms in [0, 1) for a decoder's `component_draw`, from stream 2 of the
    seed; one draw for a whole interpolated line (`one_line`), so that it stays in one
    component. None for a decoder without that input."""
    if COMPONENT_DRAW not in input_names:
        return None
    return np.resize(seeded_uniform(seed, 2, 1 if one_line else n).astype(np.float32), n)


# --- the seeded generator (serving/web/app.js implements the same) ----------------------

def _lowbias32(x: np.ndarray) -> np.ndarray:
    """The lowbias32 integer hash (C. Wellons) of uint32 values, wrapping at 2³²."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def seeded_uniform(seed: int, stream: int, count: int) -> np.ndarray:
    """`count` uniforms in (0, 1), float64: u_i = (h(i ⊕ key) + ½) / 2³², where h is
    lowbias32 and key = h(h(seed mod 2³²) ⊕ stream). The browser page computes the very
    same numbers (serving/web/app.js), so a seed draws the same picture in both."""
    with np.errstate(over="ignore"):
        key = _lowbias32(_lowbias32(np.uint32(seed % 2**32)) ^ np.uint32(stream))
        bits = _lowbias32(np.arange(count, dtype=np.uint32) ^ key)
    return (bits.astype(np.float64) + 0.5) / 2.0**32


def seeded_normal(seed: int, count: int) -> np.ndarray:
    """`count` standard normals, float64, by Box-Muller from streams 0 and 1."""
    radius = np.sqrt(-2.0 * np.log(seeded_uniform(seed, 0, count)))
    return radius * np.cos(2.0 * np.pi * seeded_uniform(seed, 1, count))


def seeded_noise(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """n seeded draws of the decoder's noise ε ~ N(0, I), float32 [n, latent_dim]: row r
    takes the normals r·latent_dim … (r + 1)·latent_dim − 1."""
    return seeded_normal(seed, n * latent_dim).reshape(n, latent_dim).astype(np.float32)


def for_every_class(z: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Every z with every label, class-major: (z tiled `classes` times, labels int64)."""
    return (np.tile(z, (classes, 1)),
            np.repeat(np.arange(classes, dtype=np.int64), len(z)))


def interpolation_noise(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """n points on the straight line between two seeded noise draws, ends included."""
    start, end = seeded_noise(2, latent_dim, seed)
    weights = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    return (1.0 - weights) * start + weights * end


def read_latents(path: str, latent_dim: int) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise SampleError(f"{path} is not a .npy file; save latents with "
                                  f"numpy.save(path, z) where z is float32 [N, {latent_dim}]")
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise SampleError(f"cannot read latents from {path} ({error}); pass a .npy file "
                          f"saved with numpy.save") from None
    if z.dtype not in (np.float32, np.float64):
        raise SampleError(f"{path} holds {z.dtype} values; latents must be float32 (or "
                          f"float64) of shape [N, {latent_dim}]")
    if z.ndim != 2 or z.shape[1] != latent_dim or not 0 < z.shape[0] <= MAX_IMAGES:
        raise SampleError(f"{path} has shape {list(z.shape)}; this decoder needs "
                          f"[N, {latent_dim}] with 1 ≤ N ≤ {MAX_IMAGES}")
    if not np.all(np.isfinite(z)):
        raise SampleError(f"{path} contains NaN or infinite values")
    return z.astype(np.float32)


def check_writable(path: str) -> None:
    """Refuses an --out that cannot be written, or whose picture format is unknown, before
    any work is done."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise SampleError(f"--out {path} is a directory; pass a file name such as grid.png")
    if not os.path.isdir(directory):
        raise SampleError(f"--out {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK) or (os.path.exists(path)
                                             and not os.access(path, os.W_OK)):
        raise SampleError(f"--out {path} cannot be written (permission denied); choose "
                          f"another path")
    image_format(path)


# --- the command -------------------------------------------------------------------------

def whole_number(low: int, high: float = math.inf):
    """An argparse `type`: an int in [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            bound = f"between {low} and {high}" if high < math.inf else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}")
        return value
    return parse


def positive_number(text: str) -> float:
    """An argparse `type`: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number above 0")
    return value


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one `SampleError` line instead of a usage dump."""

    def error(self, message):
        raise SampleError(f"{message} (see --help)")


def add_sampling_flags(parser: argparse.ArgumentParser, most_images: int, out: str) -> None:
    """--n, --label, --seed and --out, as both samplers (this one and the TF Serving
    client) take them."""
    parser.add_argument("--n", type=whole_number(1, most_images), default=None,
                        help=f"images to draw, 1-{most_images} (default: 64; a conditional "
                             f"model without --label: {CLASS_ROW_LENGTH} per class)")
    parser.add_argument("--label", default=None,
                        help="conditional models: the class to draw, by name or index "
                             "(default: one row per class)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of z, drawn by the generator the browser page shares "
                             "(default: 0)")
    parser.add_argument("--temperature", type=positive_number, default=1.0,
                        help="scales the prior's standard deviations (default: 1)")
    parser.add_argument("--out", default=out,
                        help="picture to write; its extension sets the format "
                             "(default: %(default)s)")


def main(argv: list[str]) -> str:
    parser = ArgumentParser(prog="sample.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="decoder.onnx or decoder_int8.onnx from an export")
    add_sampling_flags(parser, MAX_IMAGES, "samples.png")
    parser.add_argument("--latent-file", default=None,
                        help="decode the latents in this .npy [N, latent_dim] instead")
    parser.add_argument("--interpolate", action="store_true",
                        help="one row of --n images between two seeded latents")
    parser.add_argument("--threads", type=whole_number(1), default=None,
                        help="onnxruntime intra-op threads (default: onnxruntime's)")
    args = parser.parse_args(argv)
    if args.latent_file and args.interpolate:
        raise SampleError("--latent-file and --interpolate exclude each other; pass one")
    check_writable(args.out)

    session, latent_dim = load_decoder(args.model, args.threads, bool(args.latent_file))
    names = label_names(session)
    label = asked_label(args.label, names, args.model)
    n = sample_count(args.n, names, label)
    values = (read_latents(args.latent_file, latent_dim) if args.latent_file
              else interpolation_noise(n, latent_dim, args.seed) if args.interpolate
              else seeded_noise(n, latent_dim, args.seed))
    draws = component_draws({i.name for i in session.get_inputs()}, len(values), args.seed,
                            one_line=args.interpolate)
    images = draw(lambda values, labels, draws: decode(session, values, labels,
                                                       args.temperature, draws),
                  values, names, label, args.out, one_row=args.interpolate,
                  component_draw=draws)
    source = (f", z from {args.latent_file}" if args.latent_file
              else "" if draws is None else ", z from its class's mixture" if names
              else ", z from its VampPrior")
    return (f"{len(images)} images from {args.model} (latent_dim {latent_dim}{source}"
            f"{drawn_description(names, label)}) → {args.out}")


def draw(decode_latents, z: np.ndarray, names: list[str] | None, label: int | None,
         out: str, one_row: bool = False, component_draw: np.ndarray | None = None
         ) -> np.ndarray:
    """Decodes z (with its `component_draw`s, for a decoder that takes them) with
    `decode_latents(z, labels, component_draw)` and writes the picture both samplers
    write: for a conditional model without a label, one named row per class (each z,
    with its draw, decoded as every class); else a square grid (or one row) of z decoded
    with `label` (None: an unconditional model). Returns the decoded images."""
    if names is not None and label is None:
        every_z, labels = for_every_class(z, len(names))
        draws = None if component_draw is None else np.tile(component_draw, len(names))
        images = decode_latents(every_z, labels, draws)
        write_image(named_rows(tile(images, len(names), len(z)), names), out)
        return images
    images = decode_latents(z, None if label is None else np.full(len(z), label),
                            component_draw)
    save_picture(tile(images, 1, len(images)) if one_row else square_grid(images), out)
    return images


def run_script(main, prog: str, exit_codes: dict[type, int]) -> None:
    """Runs `main(sys.argv[1:])`, printing its result; an error of a type in `exit_codes`
    becomes one stderr line and that exit code (for this file and the TF Serving client)."""
    try:
        print(main(sys.argv[1:]))
    except tuple(exit_codes) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(next(code for kind, code in exit_codes.items() if isinstance(error, kind)))


if __name__ == "__main__":
    run_script(main, "sample.py", {SampleError: 2})
