"""`stylecast-export onnx`: a checkpoint becomes a verified ONNX artifact carrying its contract.

    checkpoint -> fold BatchNorm -> wrap pixel conversions (unless float I/O) -> torch.onnx.export
    (opset 17, static or dynamic H/W) -> onnxslim -> onnx.checker -> contract into metadata
    -> ONNX Runtime vs PyTorch on real photos -> written atomically, or not at all
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from stylecast.core.artifact import Contract, TensorSpec, write_onnx_metadata
from stylecast.core.atomic import atomic_path, check_writable
from stylecast.core.errors import InputError, StylecastError
from stylecast.core.sizes import size_flag_text
from stylecast.daemon.engines.onnxruntime_engine import OnnxEngine
from stylecast.export.deploy_model import Uint8ImageModel, fold_batchnorm, weights_sha256
from stylecast.export.verification import Comparison, compare, load_images, torch_runner
from stylecast.training.checkpoint import CheckpointInfo, load_generator
from stylecast.training.generator import SIZE_MULTIPLE

log = logging.getLogger(__name__)

OPSET = 17
INPUT, OUTPUT = "image", "stylized"
TRACE_SIZE = (256, 256)
MIN_PSNR_DB = 45.0  # FP32 ONNX Runtime vs PyTorch, uint8 outputs: in practice identical or ~60 dB
MAX_ABS_ERROR = 2  # gray levels


class VerificationFailed(StylecastError):
    """The exported graph does not compute what the checkpoint does; nothing was written."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    contract: Contract
    comparison: Comparison
    size_bytes: int


def export_onnx(checkpoint: Path, output: Path, *, size: tuple[int, int] | None = None,
                float_io: bool = False, images: Path | None = None) -> ExportResult:
    """Export `checkpoint`; `size` (H, W) makes a static model, None a dynamic one."""
    if size is not None and (size[0] % SIZE_MULTIPLE or size[1] % SIZE_MULTIPLE):
        raise InputError(f"--size {size_flag_text(*size)}: height and width must be "
                         f"multiples of {SIZE_MULTIPLE}")
    check_writable(output)
    generator, info = load_generator(checkpoint)
    contract = make_contract(info, weights_sha256(generator), size, float_io)
    verification_images = load_images(images, size)  # fail on bad images before any work
    model = trace_to_onnx(fold_batchnorm(generator), size, float_io)
    write_onnx_metadata(model, contract)
    data = model.SerializeToString()

    reference = torch_runner(Uint8ImageModel(generator.eval()))
    comparison = compare(reference, OnnxEngine(data, name=str(output)), verification_images)
    log.debug("ONNX Runtime vs PyTorch on %s", comparison.summary())
    if comparison.psnr_min < MIN_PSNR_DB or comparison.max_abs_error > MAX_ABS_ERROR:
        raise VerificationFailed(
            f"{output}: not written: ONNX Runtime disagrees with PyTorch ({comparison.summary()};"
            f" need PSNR >= {MIN_PSNR_DB:g} dB and max error <= {MAX_ABS_ERROR})")
    with atomic_path(output, size_hint=len(data)) as tmp:
        tmp.write_bytes(data)
    return ExportResult(output, contract, comparison, len(data))


def make_contract(info: CheckpointInfo, sha256: str, size: tuple[int, int] | None,
                  float_io: bool) -> Contract:
    if float_io:
        spec = TensorSpec(name=INPUT, layout="NCHW", dtype="float32", color_order="RGB",
                          value_range=(-1, 1))
    else:
        spec = TensorSpec(name=INPUT, layout="HWC", dtype="uint8", color_order="RGB",
                          value_range=(0, 255))
    height, width = size if size else (None, None)
    return Contract(input=spec, output=spec.model_copy(update={"name": OUTPUT}), height=height,
                    width=width, size_multiple=SIZE_MULTIPLE, style=info.style,
                    preset=info.preset, precision="fp32", weights_sha256=sha256)


def trace_to_onnx(generator: torch.nn.Module, size: tuple[int, int] | None,
                  float_io: bool) -> onnx.ModelProto:
    """Export, simplify and check the graph; H and W are symbolic unless `size` is given."""
    import onnxslim

    module = generator if float_io else Uint8ImageModel(generator)
    height, width = size or TRACE_SIZE
    if float_io:
        example = torch.zeros(1, 3, height, width)
        axes = {2: "height", 3: "width"}
    else:
        example = torch.zeros(height, width, 3, dtype=torch.uint8)
        axes = {0: "height", 1: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.9+ warns that the TorchScript exporter is legacy; it is the one that exports
        # symbolic H/W without torch.export's shape guards, and it is still supported.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module.eval(), (example,), buffer, opset_version=OPSET, dynamo=False,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes=None if size else {INPUT: axes, OUTPUT: axes})
    model = onnxslim.slim(onnx.load_from_string(buffer.getvalue()))
    onnx.checker.check_model(model, full_check=True)
    return model
