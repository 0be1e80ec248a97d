"""Where an ONNX model's time goes, per operator type and per node: ONNX Runtime's own profiler.

    python -m benchmarks.operator_profile MODEL.onnx [MODEL2.onnx ...] [--size 480x640] [--runs 40]

Used to find why INT8 gains less than 1.5x on the nano preset (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.models import timing_frames
from stylecast.core.cli_types import image_size


def kernel_times_ms(path: Path, size: tuple[int, int], runs: int) -> tuple[Counter, Counter]:
    """Mean kernel milliseconds per frame: (by operator type, by node name)."""
    import onnxruntime as ort

    frames = timing_frames(size)
    with tempfile.TemporaryDirectory(prefix="stylecast-profile-") as folder:
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder, "ort"))
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for index in range(runs):
            session.run(None, {name: frames[index % len(frames)]})
        events = json.loads(Path(session.end_profiling()).read_text())
    by_type, by_node = Counter(), Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            milliseconds = event["dur"] / 1000 / runs
            by_type[event["args"]["op_name"]] += milliseconds
            by_node[event["name"].removesuffix("_kernel_time")] += milliseconds
    return by_type, by_node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.operator_profile",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--size", type=image_size, default=(480, 640),
                        help="HxW, height x width (default 480x640)")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--top", type=int, default=8, help="nodes to list")
    args = parser.parse_args(argv)
    for path in args.models:
        by_type, by_node = kernel_times_ms(path, args.size, args.runs)
        print(f"{path}: {sum(by_type.values()):.1f} ms of kernels per frame")
        for op, ms in by_type.most_common():
            if ms >= 0.05:
                print(f"  {op:24s} {ms:6.2f} ms")
        for node, ms in by_node.most_common(args.top):
            print(f"    {node[-64:]:64s} {ms:6.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
