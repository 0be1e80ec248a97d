"""Cache keys: a short name of a teacher that changes whenever its renders could change."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

KEY_HEX_DIGITS = 32  # 128 bits: no two teachers collide, and cache paths stay short


def image_sha256(image: np.ndarray) -> str:
    """The sha256 of an image's decoded pixels, its shape and dtype included."""
    digest = hashlib.sha256(f"{image.dtype.str}{image.shape}".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


def teacher_key(kind: str, **parts: Any) -> str:
    """`kind-<hex>`: the kind stays readable in the cache folder, the hash covers the weights'
    sha256 and every option that changes a render (`parts`, JSON-serialisable)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return f"{kind}-{hashlib.sha256(canonical.encode()).hexdigest()[:KEY_HEX_DIGITS]}"
