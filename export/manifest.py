"""manifest.json: what an export contains, so a consumer can check what it received.

Per artifact: its path (relative to the export directory), size in bytes, sha256, input
and output names and shapes, and the differences measured against the Keras model. For a
SavedModel directory the size is the sum over its files and the sha256 covers every file's
relative path and content in sorted order.
"""

from __future__ import annotations

import hashlib
import os


def fingerprint(path: str) -> dict:
    """{"bytes", "sha256"} of a file, or of a directory's files taken in sorted order."""
    digest, total = hashlib.sha256(), 0
    if os.path.isdir(path):
        files = sorted(os.path.relpath(os.path.join(root, name), path)
                       for root, _, names in os.walk(path) for name in names)
        for relative in files:
            digest.update(relative.encode() + b"\0")
            total += _feed(digest, os.path.join(path, relative))
    else:
        total = _feed(digest, path)
    return {"bytes": total, "sha256": digest.hexdigest()}


def _feed(digest, path: str) -> int:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return os.path.getsize(path)
