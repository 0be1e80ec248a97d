"""Random weights that time like trained ones.

Two things about random weights made the presets' FP16 look 0.48-0.62x as fast as FP32 on a CPU
while the trained nano ran FP16 at FP32's speed (1.02x); neither is a property of FP16:

- Zero biases. A fresh batch norm has no shift, so every convolution it folds into gets an
  all-zero bias; the ONNX exporter stores identical tensors once and shares them, and with
  shared initializers ONNX Runtime's CPU provider runs the FP16 graph's convolutions as FP16
  kernels (FusedConv) instead of in FP32 as it does for a trained model's graph. Measured on
  nano, FP16 against FP32, 256x256, interleaved blocks (AMD EPYC, 2 cores, busy): 0.47-0.59x
  with zero biases, 0.80-1.07x with distinct ones; and the trained model's graph has distinct
  biases.
- Shrinking activations. PyTorch's default initialisation (Kaiming uniform, a = sqrt(5))
  shrinks activations about 2.5x per convolution and ReLU; the presets have no normalization at
  run time, so their late activations fall below FP16's smallest normal number (2**-14):
  34-67% of a layer's values on a photo, against 0% for the trained model. Subnormals take slow
  paths on x86; on its own this cost less (0.79-0.87x with distinct biases).

`realistic` gives a network what training leaves: convolutions that keep unit variance through
a ReLU (Kaiming normal, fan in), unit norm scales, small distinct biases and shifts, and residual
projections at a tenth of their input (what the trained nano `stain` style's blocks measured).
`subnormal_share` checks the activations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Generator, nn

SEED = 0
RESIDUAL_SCALE = 0.1
SHIFT_STD = 0.1  # biases and norm shifts: small, and no two layers alike
FP16_MIN_NORMAL = 2.0 ** -14


def realistic(module: nn.Module, seed: int = SEED) -> nn.Module:
    """Re-initialise `module` in place as above (deterministically); returns it."""
    from stylecast.training.generator import InvertedResidual

    generator = Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=generator)
            if layer.bias is not None:
                nn.init.normal_(layer.bias, std=SHIFT_STD, generator=generator)
        elif isinstance(layer, nn.BatchNorm2d | nn.InstanceNorm2d) and layer.affine:
            nn.init.ones_(layer.weight)
            nn.init.normal_(layer.bias, std=SHIFT_STD, generator=generator)
    for block in module.modules():
        if isinstance(block, InvertedResidual):  # its projection: Conv, then BatchNorm
            nn.init.constant_(block.body[-1][1].weight, RESIDUAL_SCALE)
    return module


def subnormal_share(model: Path, frame: np.ndarray) -> float:
    """The largest share, over the FP32 graph's intermediate float tensors, of non-zero values
    that FP16 cannot hold as normal numbers (|x| < 2**-14), on one uint8 HWC frame."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load(model)
    names = [name for node in graph.graph.node for name in node.output if name]
    del graph.graph.output[:]
    graph.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    session = ort.InferenceSession(graph.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: frame}
    shares = [float(np.mean(np.abs(values[values != 0]) < FP16_MIN_NORMAL))
              for values in map(np.asarray, session.run(None, feed))
              if values.dtype.kind == "f" and np.any(values)]
    return max(shares, default=0.0)
