"""`stylecast-export engine`: build a TensorRT engine from an ONNX artifact, on the device.

    stylecast-export engine model.onnx -o model.engine --precision fp16 [--size 720x1280]
        [--max-size HxW] [--workspace MiB] [--timing-cache PATH] [--force]

Writes exactly OUT.engine and its sidecar OUT.engine.json (the contract, with the engine's
precision, and the cache key). If OUT.engine is already the engine for the same key (same ONNX
bytes, TensorRT, GPU, precision and shapes), nothing is rebuilt unless --force is given. The
timing cache defaults to one file per TensorRT version and GPU beside OUT.engine.
"""

from __future__ import annotations

import argparse

from stylecast.daemon.engines.engine_cache import (
    DEFAULT_WORKSPACE_MIB,
    BuildBackend,
    ProgressLog,
    engine_is_current,
    plan_engine,
    timing_cache_path,
    write_engine,
)


def engine_command(args: argparse.Namespace, builder: BuildBackend | None = None) -> int:
    plan = plan_engine(args.model, precision=args.precision, size=args.size,
                       max_size=args.max_size, builder=builder)
    if not getattr(args, "force", False) and engine_is_current(args.output, plan.key):
        print(f"{args.output}: up to date ({plan.key.describe()})")
        return 0
    timing_cache = args.timing_cache or timing_cache_path(args.output.parent, plan.key)
    built = write_engine(plan, args.output, workspace_mib=args.workspace or DEFAULT_WORKSPACE_MIB,
                         timing_cache=timing_cache, progress=ProgressLog())
    print(f"{built.path}: {built.size_bytes / 1e6:.2f} MB in {built.seconds:.0f} s "
          f"({built.key.describe()}); timing cache {timing_cache}")
    return 0
