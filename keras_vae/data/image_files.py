"""Opening image files that anybody may have made, without trusting them.

A folder of images comes from cameras, scrapers and strangers. A file can be built to
exhaust memory (a 248 KB PNG that declares 16,000 × 16,000 pixels, a metadata chunk that
inflates to 100 MB), be cut short, or not be a file at all (a named pipe called
`x.png`, which blocks whoever opens it for reading). Every reader of user images opens
them through `open_image`, inside one `guarded_decoding` block:

- the file is opened without blocking and must be a regular file;
- the size its header declares is checked against a pixel limit before any pixel is
  decoded (`DEFAULT_MAX_IMAGE_PIXELS`; `TrainConfig.max_image_pixels`,
  `--max-image-pixels`);
- whatever Pillow raises while parsing or decoding becomes one `ImageRefused` naming the
  file, and Pillow's own warnings never reach the user.

Memory: decoding an image and converting it (turning it upright, compositing
transparency over white) holds several copies of its pixels at once. Measured for one
image at the default limit (7,071 × 7,071): a transparent PNG 955 MB, an RGB JPEG 669 MB,
about 19 and 13 bytes a pixel (docs/data.md).
"""

from __future__ import annotations

import contextlib
import os
import stat
import warnings
from collections.abc import Iterator

from PIL import Image

from keras_vae.config import DEFAULT_MAX_IMAGE_PIXELS


class ImageRefused(Exception):
    """One image file that cannot be used, and why; `str()` is `FILE: reason`."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file, self.reason = file, reason


@contextlib.contextmanager
def guarded_decoding() -> Iterator[None]:
    """The block in which `open_image` is called, entered once by the thread that starts
    the reading (worker threads may open images inside it).

    Pillow's own bomb check warns at 89 million pixels and fails at twice that, with its
    module path in the warning; `open_image` checks the declared size itself against the
    caller's limit, so Pillow's check is off and its warnings silenced for the block, and
    both are restored after it.
    """
    saved_limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit


@contextlib.contextmanager
def open_image(file: str, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
               ) -> Iterator[Image.Image]:
    """The Pillow image of `file`, header read and pixels not yet decoded, after checking
    that it is a regular file declaring at most `max_pixels` pixels. Whatever goes wrong
    opening or decoding it inside the block raises `ImageRefused`.

    Raises:
        ImageRefused: not a regular file, too many pixels, or not readable as an image.
    """
    handle = _regular_file(file)
    with handle:
        try:
            image = Image.open(handle)
        except Exception as error:  # Pillow's parsers raise a dozen kinds on bad files
            raise ImageRefused(file, f"cannot read this image ({_said(error)})") from error
        with image:
            _check_pixels(file, image, max_pixels)
            try:
                yield image
            except ImageRefused:
                raise
            except Exception as error:  # decoding: truncated or damaged pixel data
                raise ImageRefused(file, f"cannot read this image ({_said(error)})"
                                   ) from error


def _regular_file(file: str):
    """`file` opened for reading, refused unless it is a regular file. O_NONBLOCK makes
    opening a named pipe return at once instead of waiting for a writer."""
    try:
        descriptor = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise ImageRefused(file, f"cannot open it ({error.strerror})") from error
    kind = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(kind):
        os.close(descriptor)
        raise ImageRefused(file, f"not a regular file ({_kind_of(kind)}); remove it")
    return os.fdopen(descriptor, "rb")


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a file"


def _check_pixels(file: str, image: Image.Image, max_pixels: int) -> None:
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise ImageRefused(file, f"{image.width}×{image.height} is {millions(pixels)} "
                                 f"pixels, {above_the_limit(max_pixels)}")


def millions(pixels: int) -> str:
    return f"{pixels / 1e6:,.1f} million"


def above_the_limit(max_pixels: int) -> str:
    """How every refusal of too many pixels ends: the limit, and what raises it."""
    return f"above the limit of {millions(max_pixels)} (--max-image-pixels raises it)"


PLAIN_WORDS = {
    "MAX_TEXT_CHUNK": "a compressed text chunk inflates to more than Pillow's 1 MB limit",
    "image file is truncated": "the file is cut short",
}
"""Pillow's messages that name its internals, said in a user's words."""


def _said(error: Exception) -> str:
    """An exception's message in one line (its type where it has none)."""
    text = " ".join(str(error).split())
    for found, plain in PLAIN_WORDS.items():
        if found in text:
            return plain
    return text or type(error).__name__


def not_regular_files(entries) -> list[str]:
    """Paths of the `os.DirEntry`s that are not regular files or folders (named pipes,
    devices, sockets, links to nothing): what a folder reader passes over and counts."""
    return [e.path for e in entries
            if not e.is_file() and not e.is_dir() and not e.name.startswith(".")]
