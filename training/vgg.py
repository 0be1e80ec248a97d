"""Optional perceptual (content) and style losses on a VGG-16 whose weights the user supplies.

Our machines never download weights: the user points at a local file holding torchvision's
`vgg16` state dict (features.0.weight ... features.28.bias, classifier.*), e.g. one saved with
`torch.save(torchvision.models.vgg16(weights="IMAGENET1K_V1").state_dict(), "vgg16.pth")`.
The network is built here in torchvision's `features` layout, so the keys match; the classifier
is ignored.

    content loss  MSE of VGG features            (Johnson et al. 2016: relu3_3 by default)
    style loss    MSE of their Gram matrices     (relu1_2, relu2_2, relu3_3, relu4_3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from stylecast.core.errors import InputError
from stylecast.training.losses import gram_matrix, tapped_features

# torchvision's vgg16 "D" configuration: conv3x3 widths, "M" = 2x2 max pool.
VGG16_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)
# Index in `features` of the ReLU that closes each block.
LAYERS: dict[str, int] = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16Features(nn.Module):
    """torchvision's vgg16 `features` (indices 0..30). forward: [-1, 1] RGB -> named activations."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for item in VGG16_CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                c_in = int(item)
        self.features = nn.Sequential(*layers)
        for module in self.features:
            if isinstance(module, nn.Conv2d):  # torchvision's init: random weights stay usable
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        # Not persistent: the state dict holds exactly torchvision's features.* keys.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Activations at the named layers; stops after the deepest one requested."""
        unknown = [name for name in layers if name not in LAYERS]
        if unknown or not layers:
            raise ValueError(f"VGG-16 layers must be some of {', '.join(LAYERS)}, got {layers}")
        wanted = {LAYERS[name]: name for name in layers}
        return tapped_features(self.features, ((x + 1) / 2 - self.mean) / self.std, wanted)


def load_vgg16(path: Path) -> VGG16Features:
    """A frozen, eval-mode VGG16Features with the weights of a torchvision vgg16 state dict."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: VGG-16 weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise InputError(f"{path}: not a readable PyTorch weights file ({_reason(err)})") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise InputError(f"{path}: expected a VGG-16 state dict, got a {type(state).__name__}")
    model = VGG16Features()
    features = {key: value for key, value in state.items() if str(key).startswith("features.")}
    _check_features(path, features, model.state_dict())
    model.load_state_dict(features)
    return model.requires_grad_(False).eval()


def _reason(err: Exception) -> str:
    """One line out of torch.load's multi-paragraph errors."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:  # the useful part follows advice to load unsafely, which we never do
        detail = text.split(marker, 1)[1].strip().splitlines()
        return f"holds more than tensors or is corrupt: {detail[0] if detail else 'unknown'}"
    if isinstance(err, EOFError):
        return "empty or truncated"
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else type(err).__name__


def _check_features(
    path: Path, found: Mapping[str, object], expected: Mapping[str, torch.Tensor]
) -> None:
    for key, reference in expected.items():
        value = found.get(key)
        if value is None:
            raise InputError(f"{path}: not a torchvision VGG-16 state dict: missing key {key!r}")
        if not isinstance(value, torch.Tensor) or value.shape != reference.shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise InputError(
                f"{path}: key {key!r} has shape {shape}, expected {tuple(reference.shape)}"
            )
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        raise InputError(
            f"{path}: not a torchvision VGG-16 state dict: unexpected key {unexpected[0]!r} "
            f"(a vgg16_bn or other variant?)"
        )


class PerceptualLoss(nn.Module):
    """Content and style losses on a (frozen) VGG16Features; each sums MSEs over its layers."""

    def __init__(
        self, vgg: VGG16Features, content_layers: Sequence[str] = ("relu3_3",),
        style_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
    ) -> None:
        super().__init__()
        self.vgg = vgg
        self.content_layers = tuple(content_layers)
        self.style_layers = tuple(style_layers)

    def content_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Feature MSE between the generator's output and the (fixed) target images."""
        produced = self.vgg(output, self.content_layers)
        with torch.no_grad():
            wanted = self.vgg(target, self.content_layers)
        return sum(F.mse_loss(produced[name], wanted[name]) for name in self.content_layers)

    def style_loss(self, output: torch.Tensor, style_images: torch.Tensor) -> torch.Tensor:
        """Gram MSE between each output image and the mean Gram of the style batch (any size)."""
        produced = self.vgg(output, self.style_layers)
        with torch.no_grad():
            wanted = self.vgg(style_images, self.style_layers)
        total = output.new_zeros(())
        for name in self.style_layers:
            target = gram_matrix(wanted[name]).mean(dim=0, keepdim=True)
            gram = gram_matrix(produced[name])
            total = total + F.mse_loss(gram, target.expand_as(gram))
        return total
