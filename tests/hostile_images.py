"""Hostile image files, built small on disk: what a reader of strangers' images meets.

Each maker writes one file into a folder and returns its path; the PNGs are written chunk
by chunk, so a file can declare far more pixels than it holds.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_declaring(path, width: int, height: int, rows_of_zeros: int = 64) -> str:
    """A grayscale PNG whose header declares width × height pixels and whose data holds
    only the first rows (zeros): a few KB that would decode to width·height bytes."""
    row = b"\0" + b"\0" * width  # filter byte + pixels
    data = zlib.compress(row * rows_of_zeros, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data)
                + _chunk(b"IEND", b""))
    return str(path)


def png_with_text_bomb(path, inflated_mb: int = 100) -> str:
    """An ordinary 28×28 PNG with a compressed text chunk (zTXt) that inflates to
    `inflated_mb` MB: about 100 KB on disk."""
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(path)
    png = open(path, "rb").read()
    text = b"Comment\0\0" + zlib.compress(b"A" * (inflated_mb * 2**20), 9)
    end = png.rindex(b"IEND") - 4  # the IEND chunk's length field
    with open(path, "wb") as f:
        f.write(png[:end] + _chunk(b"zTXt", text) + png[end:])
    return str(path)


def named_pipe(path) -> str:
    """A named pipe with an image's name: opening it for reading waits for a writer."""
    os.mkfifo(path)
    return str(path)


def truncated_png(path) -> str:
    """A 32×32 PNG of noise cut in half."""
    pixels = np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])
    return str(path)


def ordinary_pngs(folder, count: int = 40, size: int = 28) -> list[str]:
    """`count` ordinary grayscale PNGs of size × size."""
    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"{i:03}.png")
        Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths
