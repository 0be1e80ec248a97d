"""Artifact contracts the tests build models around."""

from __future__ import annotations

import hashlib

from stylecast.core.artifact import Contract, TensorSpec

UINT8_RGB = TensorSpec(name="image", layout="HWC", dtype="uint8", color_order="RGB",
                       value_range=(0, 255))
FLOAT_NCHW = TensorSpec(name="image", layout="NCHW", dtype="float32", color_order="RGB",
                        value_range=(-1, 1))


def make_contract(spec: TensorSpec = UINT8_RGB, **overrides) -> Contract:
    """A valid contract for a 480x640 nano model taking and returning `spec` tensors."""
    fields = dict(
        input=spec,
        output=spec.model_copy(update={"name": "stylized"}),
        height=480, width=640, size_multiple=4, style="mosaic", preset="nano",
        precision="fp32", weights_sha256=hashlib.sha256(b"weights").hexdigest(),
    )
    return Contract(**{**fields, **overrides})
