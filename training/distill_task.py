"""`distill`: teach a compact student to imitate a large teacher generator (after GAN Compression,
Li et al. 2020): L1 to the teacher's output + intermediate-feature distillation through learnable
1x1 convolutions + an adversarial term from a PatchGAN that tells student from teacher outputs,
plus the flow-free temporal regularizer. Needs only content images.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from stylecast.training.cyclegan_task import adam, build_discriminator, optional_perceptual
from stylecast.training.distill import (
    FeatureDistiller,
    capture_features,
    distillation_loss,
    feature_channels,
)
from stylecast.training.losses import GANLoss
from stylecast.training.options import TrainOptions
from stylecast.training.presets import build_generator
from stylecast.training.runtime import Runtime, prepare, unwrap
from stylecast.training.temporal import temporal_loss


class DistillTask:
    mode = "distill"

    def __init__(self, options: TrainOptions, runtime: Runtime, teacher: nn.Module) -> None:
        self.options = options
        self.runtime = runtime
        self.loss = options.loss
        student = build_generator(options.model.preset)
        distiller = FeatureDistiller(feature_channels(student), feature_channels(teacher))
        self.teacher = prepare(teacher.eval().requires_grad_(False), runtime)
        self.student = prepare(student, runtime)
        self.distiller = prepare(distiller, runtime)
        self.discriminator = prepare(build_discriminator(options), runtime)
        self.opt_g = adam(itertools.chain(self.student.parameters(),
                                          self.distiller.parameters()), options)
        self.opt_d = adam(self.discriminator.parameters(), options)
        self.gan = GANLoss(self.loss.gan)
        self.perceptual = optional_perceptual(options, runtime)
        self.scaler = torch.amp.GradScaler("cuda", enabled=runtime.amp)

    def networks(self) -> dict[str, nn.Module]:
        return {"student": self.student, "distiller": self.distiller,
                "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"student": self.opt_g, "discriminator": self.opt_d}

    def deployable(self) -> nn.Module:
        return self.student

    def extra_state(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.scaler.load_state_dict(state["scaler"])

    def sample_row(self, image: torch.Tensor) -> list[torch.Tensor]:
        # Unwrapped: only rank 0 draws samples, and a DDP forward would wait for the others.
        return [image, unwrap(self.student)(image), unwrap(self.teacher)(image)]

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        content = batch["content"].to(self.runtime.device, non_blocking=True)
        with self.runtime.autocast():
            losses, student_out, teacher_out = self._student_losses(content)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(sum(losses.values())).backward()
        self.scaler.step(self.opt_g)

        with self.runtime.autocast():
            d_loss = self.gan.discriminator_loss(self.discriminator(teacher_out),
                                                 self.discriminator(student_out))
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(d_loss).backward()
        self.scaler.step(self.opt_d)
        self.scaler.update()
        return {**{name: value.item() for name, value in losses.items()}, "d": d_loss.item()}

    def _student_losses(self, content: torch.Tensor):
        loss = self.loss
        teacher_layers = unwrap(self.teacher).feature_layers()
        with torch.no_grad(), capture_features(unwrap(self.teacher), teacher_layers) as t_feats:
            teacher_out = self.teacher(content)
        student_layers = unwrap(self.student).feature_layers()
        with capture_features(unwrap(self.student), student_layers) as s_feats:
            student_out = self.student(content)
        losses = {"output_l1": loss.output_l1 * distillation_loss(student_out, teacher_out)}
        if loss.features > 0:
            losses["features"] = loss.features * self.distiller(list(s_feats), list(t_feats))
        if loss.adversarial > 0:
            losses["g_adv"] = loss.adversarial * self.gan.generator_loss(
                self.discriminator(student_out))
        if loss.temporal > 0:
            losses["temporal"] = loss.temporal * temporal_loss(self.student, content,
                                                               output=student_out)
        if self.perceptual is not None and loss.content > 0:
            losses["content"] = loss.content * self.perceptual.content_loss(student_out, content)
        return losses, student_out.detach(), teacher_out
