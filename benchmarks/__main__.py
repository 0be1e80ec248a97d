"""`python -m benchmarks`: every benchmark on this machine; a table per section, then
results.json, results.png and results.md in --out (and the README block with --readme)."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib
import logging
import os
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

from benchmarks.common import Section
from benchmarks.machine import describe, one_line
from benchmarks.report import (
    markdown,
    readme_block,
    save_json,
    save_plot,
    section_text,
    update_readme,
)
from stylecast.core.atomic import atomic_write_text

SECTIONS = ("model", "runtimes", "pipeline", "controls", "transport", "consumers", "gpu",
            "quality")
MODULES = {"model": "benchmarks.models", "runtimes": "benchmarks.runtimes",
           "pipeline": "benchmarks.pipeline",
           "controls": "benchmarks.controls", "transport": "benchmarks.transport",
           "consumers": "benchmarks.consumers",
           "gpu": "benchmarks.gpu", "quality": "benchmarks.quality"}
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
# A quick section normally takes seconds; past this it is stuck: every thread's stack goes to
# stderr and the section ends as failed, so the run still finishes and says where it hung.
QUICK_SECTION_LIMIT_S = 150


def sections_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(SECTIONS)}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and short runs (about 70 s on 2 idle cores, 2-3 "
                             "minutes on busy ones): checks the code runs")
    parser.add_argument("--sections", type=sections_list, default=SECTIONS,
                        help=f"comma-separated, from {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for results.json, results.png, results.md "
                             "(default: benchmarks/results)")
    parser.add_argument("--readme", type=Path,
                        help="also rewrite the block between the benchmark markers in this file")
    return parser.parse_args(argv)


class SectionTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: int | None):
    """Interrupt the main thread after `seconds` (None: no limit), stacks dumped first."""
    if seconds is None:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise SectionTimeout(f"still running after {seconds} s (thread stacks on stderr)")

    previous = signal.signal(signal.SIGALRM, expire)
    faulthandler.dump_traceback_later(seconds - 1)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


def run_section(name: str, quick: bool) -> Section:
    """One section; a crash or, in quick mode, a hang becomes a section that says so (the
    others still run)."""
    try:
        with time_limit(QUICK_SECTION_LIMIT_S if quick else None):
            return importlib.import_module(MODULES[name]).run(quick)
    except Exception as err:
        traceback.print_exc()
        return Section(name=name, title=name, columns={},
                       skipped=f"failed: {type(err).__name__}: {err}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    os.environ.setdefault("TQDM_DISABLE", "1")  # calibration progress bars, read at import
    warnings.filterwarnings("ignore")  # torch.onnx and quantizer chatter, not results
    results = {"machine": describe(), "quick": args.quick, "sections": []}
    print(f"stylecast benchmarks{' (--quick)' if args.quick else ''} on "
          f"{one_line(results['machine'])}", flush=True)
    sections = []
    for name in args.sections:
        start = time.monotonic()
        section = run_section(name, args.quick)
        sections.append(section)
        results["sections"].append(section.as_dict())
        print(f"\n{section_text(section)}\n  ({time.monotonic() - start:.0f} s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    save_json(results, args.out / "results.json")
    save_plot(results, args.out / "results.png")
    atomic_write_text(args.out / "results.md", markdown(results, sections))
    if args.readme:
        update_readme(args.readme, readme_block(results, sections))
    print(f"\nwritten: {args.out}/results.json, results.png, results.md"
          f"{f', {args.readme}' if args.readme else ''}")
    failed = [s.name for s in sections if s.skipped and s.skipped.startswith("failed")]
    failed += [f"{s.name} row {i}" for s in sections for i, row in enumerate(s.rows)
               if row.get("error")]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
