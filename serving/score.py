"""Score images with an exported keras-vae scorer and onnxruntime — no TensorFlow: which
images don't belong to what the model learned.

    python score.py scorer.onnx photos/ --out scores.csv
    python score.py scorer.onnx part-17.png part-18.png --out scores.csv
    python score.py scorer.onnx photos/ --threads 1 --out scores.csv

Needs numpy, onnxruntime and Pillow (requirements-edge.txt). Writes one CSV row per image:
the file, −log p(x) in nats and bits/dim, the anomaly score (higher = more unusual) and
`flagged` (the score above the threshold calibrated on the run's own validation images,
stored in the file's metadata): the numbers `python -m keras_vae.score` writes for the
same files. A folder gives its image files (not its subfolders), in name order.

Each file is read as training reads it: only regular files are opened (a named pipe is
refused, never waited on), the size its header declares is checked against
--max-image-pixels before any pixel is decoded, transparency is composited over white,
grayscale repeated into colour for a colour model, and an image is resized (Lanczos) only
if the run was trained with --image-size. A file that is unreadable, of another size,
or colour for a grayscale model refuses the whole call in one line naming every such
file; nothing is written then. Mistakes end in one line on stderr and exit code 2.
This file imports nothing of keras-vae (keras_vae/data/image_files.py holds the same checks).
"""

from __future__ import annotations

import csv
import json
import os
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps

if __package__:  # imported as serving.score
    from serving.vae_cli import ArgumentParser, SampleError, run_script, whole_number
else:  # run as a script: vae_cli.py lies beside this file
    from vae_cli import ArgumentParser, SampleError, run_script, whole_number

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_IMAGE_PIXELS = 50_000_000
"""The default limit of pixels an image may declare, training's own."""
BATCH = 256
COLUMNS = ("id", "neg_log_likelihood_nats", "bits_per_dim", "score", "flagged")


def load_scorer(path: str, threads: int | None = None):
    """(onnxruntime session, its metadata) of a scorer.onnx, or explains what to pass."""
    import onnxruntime as ort

    if not os.path.isfile(path):
        raise SampleError(f"{path}: no such file; pass the scorer.onnx of an export")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    try:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises several types for a bad file
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        raise SampleError(f"{path} is not a model onnxruntime can load ({reason}); pass "
                          f"scorer.onnx from an export") from None
    metadata = session.get_modelmeta().custom_metadata_map
    if metadata.get("role") != "scorer":
        role = metadata.get("role") or "not a keras-vae scorer"
        raise SampleError(f"{path} is a {role.replace('_', ' ')}, not the scorer; pass "
                          f"scorer.onnx from the same export (exports since the scorer "
                          f"was added write it)")
    return session, metadata


def image_files(paths: list[str]) -> list[str]:
    """The files to score: each path given, a folder's image files in name order."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(e.path for e in os.scandir(path)
                           if e.name.lower().endswith(IMAGE_EXTENSIONS)
                           and not e.name.startswith("."))
            if not found:
                raise SampleError(f"{path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            files += found
        elif os.path.lexists(path):
            files.append(path)
        else:
            raise SampleError(f"{path}: no such file or folder")
    return files


def read_image(file: str, shape: tuple[int, int, int], resize: bool, max_pixels: int
               ) -> np.ndarray:
    """One file → uint8 [H, W, C] in the model's shape, or ValueError saying why not."""
    try:
        descriptor = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise ValueError(f"cannot open it ({error.strerror})") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise ValueError("not a regular file")
    with os.fdopen(descriptor, "rb") as handle:
        try:
            with Image.open(handle) as image:
                if image.width * image.height > max_pixels:
                    raise ValueError(f"{image.width}×{image.height} pixels, above the limit "
                                     f"of {max_pixels:,} (--max-image-pixels)")
                picture = _upright_8bit(image)
        except ValueError:
            raise
        except Exception as error:  # Pillow's parsers raise a dozen kinds on bad files
            raise ValueError(f"cannot read this image ({' '.join(str(error).split())})"
                             ) from None
    return _fitted(picture, shape, resize)


def _upright_8bit(image: Image.Image) -> Image.Image:
    """The image upright as a viewer shows it, as L or RGB: transparency over white."""
    image.load()
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).astype(np.uint8))
    colour = image.mode not in ("1", "L", "LA") and not (
        image.mode == "P" and _gray_palette(image))
    mode = "RGB" if colour else "L"
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image.convert("RGBA")).convert(mode)
    return image.convert(mode)


def _gray_palette(image: Image.Image) -> bool:
    colours = np.asarray(image.getpalette("RGB") or [], np.uint8).reshape(-1, 3)
    return "transparency" not in image.info and bool((colours == colours[:, :1]).all())


def _fitted(picture: Image.Image, shape, resize: bool) -> np.ndarray:
    height, width, channels = shape
    if picture.size != (width, height):
        if not resize:
            raise ValueError(f"{picture.width}×{picture.height}, the model's images are "
                             f"{width}×{height}")
        picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    pixels = np.asarray(picture, np.uint8).reshape(height, width, -1)
    if pixels.shape[-1] == channels:
        return pixels
    if pixels.shape[-1] == 1:
        return np.repeat(pixels, channels, axis=-1)
    raise ValueError("colour, the model's images are grayscale")


def read_all(files: list[str], metadata: dict, max_pixels: int) -> np.ndarray:
    """Every file read (`read_image`), or one SampleError naming each bad one."""
    shape = tuple(json.loads(metadata["image_shape"]))
    resize = metadata.get("resize", "false") == "true"
    images, bad = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's bomb warning: the limit above applies
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            for file in files:
                try:
                    images.append(read_image(file, shape, resize, max_pixels))
                except ValueError as reason:
                    bad.append(f"{file}: {reason}")
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise SampleError(f"{len(bad)} of {len(files)} files cannot be scored ({shown}); "
                          f"nothing was written")
    return np.stack(images)


def score(session, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every scorer output for uint8 images [N, H, W, C], in batches."""
    names = [o.name for o in session.get_outputs()]
    parts = [dict(zip(names, session.run(names, {"images": images[i:i + BATCH]}),
                      strict=True)) for i in range(0, len(images), BATCH)]
    return {name: np.concatenate([p[name] for p in parts]) for name in names}


def write_csv(path: str, ids: list[str], outputs: dict) -> None:
    """The scores, in one rename (the same columns as `python -m keras_vae.score`)."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                       f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for i, name in enumerate(ids):
                writer.writerow([name, f"{outputs['neg_log_likelihood'][i]:.3f}",
                                 f"{outputs['bits_per_dim'][i]:.5f}",
                                 f"{outputs['score'][i]:.4f}", int(outputs["flagged"][i])])
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv: list[str]) -> str:
    parser = ArgumentParser(prog="score.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="scorer.onnx from an export")
    parser.add_argument("images", nargs="+", help="image files or folders of them")
    parser.add_argument("--out", default="scores.csv", help="CSV to write "
                                                            "(default: %(default)s)")
    parser.add_argument("--threads", type=whole_number(1), default=None,
                        help="onnxruntime intra-op threads (default: onnxruntime's)")
    parser.add_argument("--max-image-pixels", type=whole_number(1), default=MAX_IMAGE_PIXELS,
                        help="most pixels an image may declare (default: %(default)s)")
    args = parser.parse_args(argv)
    if os.path.isdir(args.out):
        raise SampleError(f"--out {args.out} is a directory; pass a file name such as "
                          f"scores.csv")
    session, metadata = load_scorer(args.model, args.threads)
    files = image_files(args.images)
    outputs = score(session, read_all(files, metadata, args.max_image_pixels))
    write_csv(args.out, files, outputs)
    flagged = int(outputs["flagged"].sum())
    return (f"{len(files)} images scored: {flagged} flagged (threshold "
            f"{float(metadata['threshold']):.3f}, which flags {float(metadata['fpr']):.1%} "
            f"of the run's validation images) → {args.out}")


if __name__ == "__main__":
    run_script(main, "score.py", {SampleError: 2})
