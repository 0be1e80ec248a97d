"""Content digests of files: what cache keys and artifact checks are built on."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """The hex sha256 of a file's bytes, read in chunks (engines and models can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
