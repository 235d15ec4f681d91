"""Sample images from an exported keras-vae decoder with onnxruntime — no TensorFlow.

    python sample.py decoder.onnx --n 64 --seed 0 --out grid.png
    python sample.py decoder.onnx --latent-file z.npy --out decoded.png
    python sample.py decoder.onnx --interpolate --n 10 --seed 3 --out row.png
    python sample.py decoder_int8.onnx --threads 1 --out grid.png
    python sample.py decoder.onnx --label Sneaker --n 16 --out sneakers.png   # conditional

It runs with the four modules beside it (copy serving/sample.py and serving/vae_*.py onto
a device: the command-line plumbing, the decoder, the seeded draws and the pictures) and
needs exactly three packages, also listed in requirements-edge.txt beside it:

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
need numpy and Pillow alone. These files import nothing of keras-vae; the TF Serving
client and score.py beside them reuse their seeded draws, pictures and plumbing.
"""

from __future__ import annotations

import argparse

import numpy as np

if __package__:  # imported as serving.sample
    from serving.vae_cli import (
        ArgumentParser,
        SampleError,
        positive_number,
        run_script,
        whole_number,
    )
    from serving.vae_decoder import (
        CLASS_ROW_LENGTH,
        asked_label,
        decode,
        drawn_description,
        label_names,
        load_decoder,
        sample_count,
    )
    from serving.vae_draws import (
        component_draws,
        for_every_class,
        interpolation_noise,
        seeded_noise,
    )
    from serving.vae_pictures import (
        check_writable,
        named_rows,
        save_picture,
        square_grid,
        tile,
        write_image,
    )
else:  # run as a script: the modules lie beside this file
    from vae_cli import ArgumentParser, SampleError, positive_number, run_script, whole_number
    from vae_decoder import (
        CLASS_ROW_LENGTH,
        asked_label,
        decode,
        drawn_description,
        label_names,
        load_decoder,
        sample_count,
    )
    from vae_draws import component_draws, for_every_class, interpolation_noise, seeded_noise
    from vae_pictures import (
        check_writable,
        named_rows,
        save_picture,
        square_grid,
        tile,
        write_image,
    )

MAX_IMAGES = 10_000
"""Most images per call (28×28 Bernoulli decoders: 10,000 × 784 pixels × 2 float32
outputs ≈ 63 MB of output)."""



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


if __name__ == "__main__":
    run_script(main, "sample.py", {SampleError: 2})
