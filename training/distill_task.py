"""`distill`: teach a compact student to imitate a teacher, from pairs of photos and renders.

The teacher is any `teachers.base.Teacher` (a torch generator, an ONNX model, ...). Its renders
come with each batch (pairs.py: photo crop and the render of the same place, augmented before
the teacher saw them), so a step never runs the teacher. The student learns from

    output_l1            L1 to the render
    gradient_l1          L1 between image gradients: edges and fine texture
    inception_features   InceptionV3 features of the output vs the render   (inception_loss.py,
    inception_gram       their Gram matrices: the texture                    per-layer normalised)
    g_adv                a PatchGAN that takes renders as real, student outputs as fake
    temporal             the flow-free temporal regularizer (temporal.py)
    features             optional, torch teachers only: GAN Compression's feature distillation
    content, style       optional VGG-16 losses to the render (a user-supplied weights file)

An exponential moving average of the student's weights (ema.py) is what the checkpoint deploys;
the raw student keeps training.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylecast.core.errors import ConfigError
from stylecast.training.builders import adam, build_discriminator, optional_perceptual
from stylecast.training.distill import FeatureDistiller, capture_features, feature_channels
from stylecast.training.ema import WeightAverage
from stylecast.training.inception_loss import InceptionLoss, load_inception_blocks
from stylecast.training.losses import GANLoss, gradient_l1
from stylecast.training.options import TrainOptions
from stylecast.training.presets import build_generator
from stylecast.training.runtime import Runtime, prepare, unwrap
from stylecast.training.teachers.base import Teacher
from stylecast.training.temporal import temporal_loss


class DistillTask:
    mode = "distill"

    def __init__(self, options: TrainOptions, runtime: Runtime, teacher: Teacher) -> None:
        self.options = options
        self.runtime = runtime
        self.loss = options.loss
        self.teacher = teacher
        student = build_generator(options.model.preset)
        self.ema = (WeightAverage(student, options.distill.ema).to(runtime.device)
                    if options.distill.ema > 0 else None)
        self.student = prepare(student, runtime)
        self.discriminator = prepare(build_discriminator(options), runtime)
        self.feature_teacher, self.distiller = self._feature_distillation(student)
        trained = [self.student] + ([self.distiller] if self.distiller else [])
        self.opt_g = adam(itertools.chain(*(m.parameters() for m in trained)), options)
        self.opt_d = adam(self.discriminator.parameters(), options)
        self.gan = GANLoss(self.loss.gan)
        self.inception = (InceptionLoss(load_inception_blocks(runtime.device),
                                        self.loss.inception_feature_layers,
                                        self.loss.inception_gram_layers, self.loss.inception_size)
                          if options.needs_inception() else None)
        self.perceptual = optional_perceptual(options, runtime)
        self.scaler = torch.amp.GradScaler("cuda", enabled=runtime.amp)

    def _feature_distillation(self, student: nn.Module):
        if self.loss.features <= 0:
            return None, None
        module = self.teacher.feature_module()
        if module is None:
            raise ConfigError(f"key 'loss.features' = {self.loss.features}: feature "
                              f"distillation needs a torch teacher, not {self.teacher.description}"
                              "; set it to 0")
        distiller = FeatureDistiller(feature_channels(student), feature_channels(module))
        return (prepare(module.eval().requires_grad_(False), self.runtime),
                prepare(distiller, self.runtime))

    def networks(self) -> dict[str, nn.Module]:
        nets = {"student": self.student, "discriminator": self.discriminator}
        if self.ema is not None:
            nets["ema"] = self.ema
        if self.distiller is not None:
            nets["distiller"] = self.distiller
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"student": self.opt_g, "discriminator": self.opt_d}

    def deployable(self) -> nn.Module:
        return self.ema.average if self.ema is not None else self.student

    def extra_state(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.scaler.load_state_dict(state["scaler"])

    def sample_row(self, image: Tensor) -> list[Tensor]:
        # Unwrapped: only rank 0 draws samples, and a DDP forward would wait for the others.
        rendered = self.teacher.render(image).to(image.device, image.dtype)
        return [image, unwrap(self.deployable())(image), rendered]

    def train_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        content = batch["content"].to(self.runtime.device, non_blocking=True)
        target = batch["target"].to(self.runtime.device, non_blocking=True)
        with self.runtime.autocast():
            losses, student_out = self._student_losses(content, target)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(sum(losses.values())).backward()
        self.scaler.step(self.opt_g)
        if self.loss.adversarial > 0:
            losses["d"] = self._discriminator_step(target, student_out)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(unwrap(self.student))
        return {name: float(value.detach()) for name, value in losses.items()}

    def _discriminator_step(self, real: Tensor, fake: Tensor) -> Tensor:
        with self.runtime.autocast():
            d_loss = self.gan.discriminator_loss(self.discriminator(real),
                                                 self.discriminator(fake))
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(d_loss).backward()
        self.scaler.step(self.opt_d)
        return d_loss.detach()

    def _student_losses(self, content: Tensor, target: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        loss = self.loss
        out, student_feats = self._student_forward(content)
        losses = {"output_l1": loss.output_l1 * F.l1_loss(out, target),
                  "gradient_l1": loss.gradient_l1 * gradient_l1(out, target)}
        if self.inception is not None:
            terms = self.inception(out, target)
            losses["inception_features"] = loss.inception_features * terms.features
            losses["inception_gram"] = loss.inception_gram * terms.style
        if loss.adversarial > 0:
            losses["g_adv"] = loss.adversarial * self.gan.generator_loss(self.discriminator(out))
        if loss.temporal > 0:
            losses["temporal"] = loss.temporal * temporal_loss(self.student, content, output=out)
        if self.distiller is not None:
            losses["features"] = loss.features * self._feature_loss(content, student_feats)
        if self.perceptual is not None:
            if loss.content > 0:
                losses["content"] = loss.content * self.perceptual.content_loss(out, target)
            if loss.style > 0:
                losses["style"] = loss.style * self.perceptual.style_loss(out, target)
        # The discriminator is updated from the detached output after this step.
        return losses, out.detach()

    def _student_forward(self, content: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The student's output, and its tapped features when feature distillation is on."""
        if self.distiller is None:
            return self.student(content), []
        student = unwrap(self.student)
        with capture_features(student, student.feature_layers()) as feats:
            out = self.student(content)
        return out, list(feats)

    def _feature_loss(self, content: Tensor, student_feats: list[Tensor]) -> Tensor:
        teacher = unwrap(self.feature_teacher)
        with torch.no_grad(), capture_features(teacher, teacher.feature_layers()) as feats:
            self.feature_teacher(content)
        return self.distiller(student_feats, list(feats))
