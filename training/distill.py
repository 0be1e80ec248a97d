"""Distilling a large teacher generator into a compact student (GAN Compression, Li et al. 2020).

The student learns the teacher's output (L1, `distillation_loss`) and its intermediate features:
at each tap that `feature_layers()` names on both generators, a learnable 1x1 convolution maps the
student's features to the teacher's channels and is scored by MSE (`FeatureDistiller`). The
trainer adds the adversarial term. Features are read with forward hooks (`capture_features`), so
neither generator's forward changes:

    with capture_features(student, student.feature_layers()) as student_feats, \\
            capture_features(teacher, teacher.feature_layers()) as teacher_feats:
        with torch.no_grad():
            target = teacher(x)
        output = student(x)
        loss = 10 * distillation_loss(output, target) + distiller(student_feats, teacher_feats)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@contextlib.contextmanager
def capture_features(model: nn.Module, layers: Sequence[nn.Module]) -> Iterator[list[Tensor]]:
    """Yield a list that holds the outputs of `layers`, in the order given, after each forward.

    A pre-hook on `model` empties the list when a forward starts and a hook on `model` fills it
    when the forward ends, so the list always holds the latest forward's features (with their
    autograd graph) and never a mix of two. A layer that runs twice in one forward keeps its last
    output. The list keeps the last forward's features after the block exits; all hooks are
    removed on exit, also on error. Hooks go on `model` itself, so pass the module whose forward
    runs (with DDP, the wrapped module: its forward runs inside the wrapper's).
    """
    members = {id(module) for module in model.modules()}
    for index, layer in enumerate(layers):
        if id(layer) not in members:
            raise ValueError(f"feature layer {index} ({type(layer).__name__}) is not part of "
                             f"the model")
    features: list[Tensor] = []
    latest: dict[int, Tensor] = {}

    def start(_module: nn.Module, _args: object) -> None:
        features.clear()
        latest.clear()

    def keep(index: int):
        def hook(_module: nn.Module, _args: object, output: Tensor) -> None:
            latest[index] = output
        return hook

    def finish(_module: nn.Module, _args: object, _output: object) -> None:
        missing = [index for index in range(len(layers)) if index not in latest]
        if missing:
            raise RuntimeError(f"feature layer(s) {missing} did not run in the forward pass")
        features[:] = [latest[index] for index in range(len(layers))]
        latest.clear()

    handles = [model.register_forward_pre_hook(start)]
    handles += [layer.register_forward_hook(keep(index)) for index, layer in enumerate(layers)]
    handles.append(model.register_forward_hook(finish))  # after the layers' hooks, even on model
    try:
        yield features
    finally:
        for handle in handles:
            handle.remove()


class FeatureDistiller(nn.Module):
    """Feature distillation: one learnable 1x1 conv per tap, student channels -> teacher channels.

    forward(student_feats, teacher_feats): the mean over taps of MSE(adapter(student), teacher),
    with the teacher's features detached. Gradients reach the adapters and the student.
    """

    def __init__(self, student_channels: Sequence[int], teacher_channels: Sequence[int]) -> None:
        super().__init__()
        if len(student_channels) != len(teacher_channels) or not student_channels:
            raise ValueError(f"need the same number (>= 1) of student and teacher taps, got "
                             f"{list(student_channels)} and {list(teacher_channels)}")
        self.adapters = nn.ModuleList(
            nn.Conv2d(s, t, 1) for s, t in zip(student_channels, teacher_channels, strict=True)
        )

    def forward(self, student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> Tensor:
        if not len(student_feats) == len(teacher_feats) == len(self.adapters):
            raise ValueError(f"expected {len(self.adapters)} student and teacher features, got "
                             f"{len(student_feats)} and {len(teacher_feats)}")
        losses = []
        for index, (adapter, s, t) in enumerate(
            zip(self.adapters, student_feats, teacher_feats, strict=True)
        ):
            _check_tap(index, adapter, s, t)
            losses.append(F.mse_loss(adapter(s), t.detach()))
        return torch.stack(losses).mean()


def _check_tap(index: int, adapter: nn.Conv2d, student: Tensor, teacher: Tensor) -> None:
    fits = student.dim() == teacher.dim() == 4 and (
        (student.shape[1], teacher.shape[1]) == (adapter.in_channels, adapter.out_channels)
        and (student.shape[0], *student.shape[2:]) == (teacher.shape[0], *teacher.shape[2:])
    )
    if not fits:
        raise ValueError(
            f"feature tap {index}: student {tuple(student.shape)} does not map onto teacher "
            f"{tuple(teacher.shape)} (adapter {adapter.in_channels}->{adapter.out_channels} "
            f"channels; batch and spatial size must match)"
        )


def feature_channels(model: nn.Module, height: int = 64, width: int = 64) -> list[int]:
    """The channels at each of `model.feature_layers()`, from one dry forward pass.

    Runs in eval mode under no_grad (BatchNorm statistics stay as they are); every module's
    train/eval mode is restored afterwards.
    """
    parameter = next(model.parameters())
    x = torch.zeros(1, getattr(model, "input_nc", 3), height, width,
                    dtype=parameter.dtype, device=parameter.device)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad(), capture_features(model, model.feature_layers()) as features:
            model(x)
    finally:
        for module, training in modes.items():
            module.training = training
    return [feature.shape[1] for feature in features]


def distillation_loss(student_out: Tensor, teacher_out: Tensor) -> Tensor:
    """L1 between the student's and the (detached) teacher's output images."""
    if student_out.shape != teacher_out.shape:
        raise ValueError(f"student output {tuple(student_out.shape)} and teacher output "
                         f"{tuple(teacher_out.shape)} differ in shape")
    return F.l1_loss(student_out, teacher_out.detach())
