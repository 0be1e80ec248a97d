"""The bodies of `stylecast-train fit` and `distill`: options, data, task, trainer, resume."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from stylecast.core.errors import ConfigError, InputError
from stylecast.core.validation import NAME_PATTERN
from stylecast.training.checkpoint import LAST, load_checkpoint
from stylecast.training.data import ImageFolder, UnpairedImages, infinite_batches
from stylecast.training.options import TrainOptions, load_options
from stylecast.training.pairs import RenderedPairs
from stylecast.training.runtime import Runtime, seed_everything, start_runtime, stop_runtime
from stylecast.training.trainer import Trainer

log = logging.getLogger(__name__)
SAMPLE_IMAGES = 4

# command-line flag -> option key
FLAG_KEYS = {"preset": "model.preset", "steps": "optim.steps", "size": "data.size",
             "batch_size": "data.batch_size", "device": "run.device"}


def fit(args: argparse.Namespace) -> int:
    options, payload = _options(args, mode="fit")
    style_name = options.model.style_name or folder_style_name(args.style)
    return _train(args, options, payload, style_name, teacher=None)


def distill(args: argparse.Namespace) -> int:
    from stylecast.training.teachers.loader import load_teacher, style_image_source

    source = (args.teacher if args.style_image is None
              else style_image_source(str(args.style_image)))
    options, payload = _options(args, mode="distill")
    teacher = load_teacher(source, options.teacher)
    _record_teacher(options, payload, args.out / LAST, source, teacher.cache_key())
    log.info("teacher: %s (%s)", source, teacher.description)
    named_after = args.style_image or Path(args.teacher)
    style_name = (options.model.style_name or teacher.style
                  or _as_name(named_after.stem) or "style")
    return _train(args, options, payload, style_name, teacher=teacher)


def _record_teacher(options: TrainOptions, payload: dict[str, Any] | None, last: Path,
                    source: str, key: str) -> None:
    """Write the teacher into the run's options; a resumed run must keep the teacher it had."""
    recorded = (payload or {}).get("options", {}).get("teacher", {})
    if recorded.get("key") and recorded["key"] != key:
        from stylecast.training.teachers.loader import command_line

        was = recorded.get("source", "")
        raise InputError(f"{last}: the run distills {was!r}, not {source!r} (teacher keys "
                         f"{recorded['key']} and {key}); resume with {command_line(was)} or "
                         "choose another --out")
    options.teacher.source, options.teacher.key = source, key


def _train(args, options: TrainOptions, payload, style_name: str, teacher) -> int:
    runtime = start_runtime(options.run.device, options.run.amp)
    if not runtime.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # one copy of the run's log, from rank 0
    try:
        with logging_redirect_tqdm():
            return _train_in(runtime, args, options, payload, style_name, teacher)
    finally:
        stop_runtime(runtime)


def _train_in(runtime: Runtime, args, options, payload, style_name, teacher) -> int:
    from stylecast.training.cyclegan_task import CycleGANTask
    from stylecast.training.distill_task import DistillTask

    data = options.data
    content = ImageFolder(args.content, "content", data.size, load_scale=data.load_scale,
                          progress=runtime.is_main)
    log.info("%s", content.summary())
    if teacher is None:
        style = ImageFolder(args.style, "style", data.size, load_scale=data.load_scale,
                            progress=runtime.is_main)
        log.info("%s", style.summary())
        dataset: Any = UnpairedImages(content, style)
    else:
        dataset = _rendered_pairs(runtime, options, content, teacher)

    seed_everything(options.run.seed)  # identical initial weights on every DDP rank
    task = (CycleGANTask(options, runtime) if teacher is None
            else DistillTask(options, runtime, teacher))
    args.out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(task, options, args.out, runtime, options.model.preset, style_name)
    if payload is not None:
        trainer.restore(payload)
        log.info("resuming %s at step %d of %d", args.out / LAST, trainer.step,
                 options.optim.steps)
    else:
        seed_everything(options.run.seed + runtime.rank)
    log.info("%s: preset %s, style %r, device %s%s, %d steps of batch %d at %dpx", task.mode,
             options.model.preset, style_name, runtime.device,
             f" x{runtime.world_size}" if runtime.distributed else "", options.optim.steps,
             data.batch_size, data.size)
    batches = infinite_batches(dataset, data.batch_size, seed=options.run.seed + trainer.step,
                               rank=runtime.rank, world_size=runtime.world_size,
                               num_workers=data.workers)
    samples = content.center_crops(SAMPLE_IMAGES)
    stop_signal = trainer.run(batches, samples)
    if stop_signal is not None:
        log.info("interrupted at step %d; %s is saved, --resume continues", trainer.step,
                 args.out / LAST)
        return 128 + stop_signal
    if runtime.is_main:
        log.info("done: %s", args.out / LAST)
    return 0


def _rendered_pairs(runtime: Runtime, options: TrainOptions, content: ImageFolder,
                    teacher) -> RenderedPairs:
    """The distillation pairs, every render made (or found in the cache) before step one."""
    from stylecast.training.teachers.cache import RenderCache

    distill = options.distill
    cache = RenderCache(teacher, options.teacher.cache_dir or None)
    pairs = RenderedPairs(content, cache, options.data.size, distill.scales, distill.variants,
                          distill.jitter, memory_bytes=distill.memory_mb << 20)
    log.info("teacher renders: %d photos x %d scales x %d variants = %d, cached in %s",
             len(content), len(distill.scales), distill.variants, pairs.count(), cache.folder)
    pairs.prerender(progress=runtime.is_main, share=(runtime.rank, runtime.world_size))
    if runtime.distributed:
        torch.distributed.barrier()  # every rank's share is on disk before anyone trains
    log.info("teacher renders: %d made, %d found in the cache", cache.counts.rendered,
             cache.counts.reused)
    return pairs


def _options(args: argparse.Namespace, mode: str) -> tuple[TrainOptions, dict[str, Any] | None]:
    overrides = {key: getattr(args, flag) for flag, key in FLAG_KEYS.items()
                 if getattr(args, flag, None) is not None}
    overrides.update(dict(args.set or []))
    last = args.out / LAST
    payload = None
    if args.resume:
        if not last.exists():
            raise InputError(f"{last}: nothing to resume (no checkpoint in {args.out})")
        payload = load_checkpoint(last)
        if payload["mode"] != mode:
            raise InputError(f"{last}: is a '{payload['mode']}' run; resume it with "
                             f"'stylecast-train {payload['mode']}'")
    elif last.exists():
        raise ConfigError(f"{args.out} already holds a run ({LAST}); pass --resume to continue "
                          "it or choose another --out")
    options = load_options(args.config, overrides, base=payload["options"] if payload else None,
                           mode=mode)
    return options, payload


def folder_style_name(folder: Path) -> str:
    return _as_name(Path(folder).resolve().name) or "style"


def _as_name(text: str) -> str:
    """A folder or file name made into a valid artifact style name."""
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-._+")[:64]
    return name if re.fullmatch(NAME_PATTERN, name) else ""
