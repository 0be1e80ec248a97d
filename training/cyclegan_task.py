"""`fit`: unpaired style learning, CycleGAN-style (Zhu et al. 2017), needing no pretrained network.

Two compact generators (content->style, deployed; style->content, only for the cycle), two
PatchGAN discriminators, adversarial + cycle + identity losses with image pools, plus the
flow-free temporal regularizer on the deployed generator and optional VGG-16 losses.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from stylecast.training.builders import adam, build_discriminator, optional_perceptual
from stylecast.training.losses import GANLoss, ImagePool, cycle_loss, identity_loss
from stylecast.training.options import TrainOptions
from stylecast.training.presets import build_generator
from stylecast.training.runtime import Runtime, prepare, unwrap
from stylecast.training.temporal import temporal_loss


class CycleGANTask:
    mode = "fit"

    def __init__(self, options: TrainOptions, runtime: Runtime) -> None:
        self.options = options
        self.runtime = runtime
        self.loss = options.loss
        preset = options.model.preset
        self.g_style = prepare(build_generator(preset), runtime)  # content -> style: deployed
        self.g_content = prepare(build_generator(preset), runtime)  # style -> content
        self.d_style = prepare(build_discriminator(options), runtime)
        self.d_content = prepare(build_discriminator(options), runtime)
        self.opt_g = adam(itertools.chain(self.g_style.parameters(),
                                          self.g_content.parameters()), options)
        self.opt_d = adam(itertools.chain(self.d_style.parameters(),
                                          self.d_content.parameters()), options)
        self.gan = GANLoss(self.loss.gan)
        self.pool_style = ImagePool(options.discriminator.pool)
        self.pool_content = ImagePool(options.discriminator.pool)
        self.perceptual = optional_perceptual(options, runtime)
        self.scaler = torch.amp.GradScaler("cuda", enabled=runtime.amp)

    def networks(self) -> dict[str, nn.Module]:
        return {"g_style": self.g_style, "g_content": self.g_content,
                "d_style": self.d_style, "d_content": self.d_content}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generators": self.opt_g, "discriminators": self.opt_d}

    def deployable(self) -> nn.Module:
        return self.g_style

    def extra_state(self) -> dict[str, Any]:
        return {"pool_style": self.pool_style.state_dict(),
                "pool_content": self.pool_content.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_style.load_state_dict(state["pool_style"])
        self.pool_content.load_state_dict(state["pool_content"])
        self.scaler.load_state_dict(state["scaler"])

    def sample_row(self, image: torch.Tensor) -> list[torch.Tensor]:
        # Unwrapped: only rank 0 draws samples, and a DDP forward would wait for the others.
        return [image, unwrap(self.g_style)(image)]

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        content = batch["content"].to(self.runtime.device, non_blocking=True)
        style = batch["style"].to(self.runtime.device, non_blocking=True)
        with self.runtime.autocast():
            g_losses, fake_style, fake_content = self._generator_losses(content, style)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(sum(g_losses.values())).backward()
        self.scaler.step(self.opt_g)

        with self.runtime.autocast():
            d_losses = {
                "d_style": self.gan.discriminator_loss(
                    self.d_style(style), self.d_style(self.pool_style.query(fake_style))),
                "d_content": self.gan.discriminator_loss(
                    self.d_content(content), self.d_content(self.pool_content.query(fake_content))),
            }
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(0.5 * sum(d_losses.values())).backward()
        self.scaler.step(self.opt_d)
        self.scaler.update()
        return {name: value.item() for name, value in {**g_losses, **d_losses}.items()}

    def _generator_losses(self, content: torch.Tensor, style: torch.Tensor):
        loss = self.loss
        fake_style = self.g_style(content)
        fake_content = self.g_content(style)
        losses = {
            "g_adv": loss.adversarial * (self.gan.generator_loss(self.d_style(fake_style))
                                         + self.gan.generator_loss(self.d_content(fake_content))),
            "cycle": loss.cycle * (cycle_loss(self.g_content(fake_style), content)
                                   + cycle_loss(self.g_style(fake_content), style)),
        }
        if loss.identity > 0:
            losses["identity"] = loss.identity * loss.cycle * (
                identity_loss(self.g_style(style), style)
                + identity_loss(self.g_content(content), content))
        if loss.temporal > 0:
            losses["temporal"] = loss.temporal * temporal_loss(self.g_style, content,
                                                               output=fake_style)
        if self.perceptual is not None:
            if loss.content > 0:
                losses["content"] = loss.content * self.perceptual.content_loss(fake_style, content)
            if loss.style > 0:
                losses["style"] = loss.style * self.perceptual.style_loss(fake_style, style)
        # The discriminators are updated from detached fakes after this step.
        return losses, fake_style.detach(), fake_content.detach()
