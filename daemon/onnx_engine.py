"""Run a stylecast ONNX artifact with ONNX Runtime: uint8 RGB frames in, uint8 RGB frames out.

The artifact's contract says how to feed it. A model exported with its pixel conversions inside
(uint8 HWC in and out) is fed the frame as it is; a `--float-io` model gets the conversion done
here in numpy, as its contract's layout, dtype, color order and value range say.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stylecast.daemon.artifact import Contract, TensorSpec
from stylecast.daemon.errors import ArtifactError


class OnnxEngine:
    """One ONNX Runtime session over an artifact. Call it with (H, W, 3) uint8 RGB frames."""

    def __init__(self, model: str | Path | bytes, *, threads: int | None = None,
                 providers: list[str] | None = None, name: str | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ArtifactError("running ONNX models needs onnxruntime "
                                "(pip install 'stylecast[onnx]')") from None
        self.name = name or (str(model) if not isinstance(model, bytes) else "model")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(
                source, options, providers=providers or ["CPUExecutionProvider"])
        except Exception as err:  # ORT raises its own Fail/InvalidGraph/NoSuchFile types
            raise ArtifactError(f"{self.name}: ONNX Runtime cannot load it ({err})") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.contract = Contract.from_metadata(metadata, source=self.name)
        self._check_io_names()

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        feed = to_model_input(frame, self.contract.input)
        (output,) = self.session.run([self.contract.output.name],
                                     {self.contract.input.name: feed})
        return from_model_output(output, self.contract.output)

    def _check_io_names(self) -> None:
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [self.contract.input.name] or self.contract.output.name not in outputs:
            raise ArtifactError(
                f"{self.name}: graph inputs {inputs} / outputs {outputs} do not match the "
                f"contract's '{self.contract.input.name}' -> '{self.contract.output.name}'")


def to_model_input(frame: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> the tensor `spec` describes."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 frame, got {frame.dtype} {frame.shape}")
    pixels = frame[..., ::-1] if spec.color_order == "BGR" else frame
    if spec.dtype != "uint8":
        low, high = spec.value_range
        pixels = pixels.astype(np.float32) * ((high - low) / 255.0) + low
        pixels = pixels.astype(spec.dtype)
    if spec.layout == "NCHW":
        pixels = pixels.transpose(2, 0, 1)[None]
    elif spec.layout == "NHWC":
        pixels = pixels[None]
    return np.ascontiguousarray(pixels)


def from_model_output(tensor: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The tensor `spec` describes -> (H, W, 3) uint8 RGB."""
    if spec.layout == "NCHW":
        tensor = tensor[0].transpose(1, 2, 0)
    elif spec.layout == "NHWC":
        tensor = tensor[0]
    if spec.dtype != "uint8":
        low, high = spec.value_range
        scaled = (tensor.astype(np.float32) - low) * (255.0 / (high - low))
        tensor = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    if spec.color_order == "BGR":
        tensor = tensor[..., ::-1]
    return np.ascontiguousarray(tensor)
