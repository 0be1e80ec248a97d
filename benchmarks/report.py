"""Showing the results: a text table per section, results.json, results.png and the README's
markdown block."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from benchmarks.common import Section, headline_size
from benchmarks.machine import one_line
from stylecast.core.atomic import atomic_write_bytes, atomic_write_text

README_START, README_END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


# --- text -------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "inf"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def table(columns: dict[str, str], rows: list[dict], *, markdown: bool = False) -> str:
    headers = list(columns.values())
    body = [[cell(row.get(key)) for key in columns] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def section_text(section: Section) -> str:
    lines = [f"== {section.title}"]
    if section.skipped:
        return "\n".join([*lines, f"skipped: {section.skipped}"])
    lines.append(table(section.columns, section.rows))
    lines += [f"  * {note}" for note in section.notes]
    lines += [f"  target {t.name}: wanted {t.wanted}, measured {cell(t.measured)} -> "
              f"{'met' if t.met else 'MISSED'}" for t in section.targets]
    return "\n".join(lines)


# --- files ------------------------------------------------------------------------------------


def finite(value: Any) -> Any:
    """JSON has no infinity or NaN: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def save_json(results: dict, path: Path) -> None:
    atomic_write_text(path, json.dumps(finite(results), indent=1) + "\n")


def save_plot(results: dict, path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from benchmarks.plots import PANELS

    sections = {s["name"]: s for s in results["sections"]}
    figure, axes = plt.subplots(2, 2, figsize=(15, 10))
    for axis, panel in zip(axes.flat, PANELS, strict=True):
        panel(axis, sections)
    figure.suptitle(f"stylecast benchmarks - {one_line(results['machine'])}", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


# --- markdown ---------------------------------------------------------------------------------


def markdown(results: dict, sections: list[Section]) -> str:
    """Every section's table and targets, for docs; `readme_block` is the short version."""
    parts = [f"Measured on: {one_line(results['machine'])}"
             f"{' (--quick)' if results['quick'] else ''}."]
    for section in sections:
        parts.append(f"### {section.title}")
        if section.skipped:
            parts.append(f"Skipped here: {section.skipped}.")
            continue
        parts.append(table(section.columns, section.rows, markdown=True))
        parts.append("\n".join(f"- {note}" for note in section.notes))
    parts.append(targets_markdown(sections))
    return "\n\n".join(parts) + "\n"


def targets_markdown(sections: list[Section]) -> str:
    rows = [{"target": t.name, "wanted": t.wanted, "measured": t.measured,
             "met": "met" if t.met else "**missed**"}
            for s in sections for t in s.targets]
    columns = {"target": "target (docs/architecture.md)", "wanted": "wanted",
               "measured": "measured", "met": ""}
    return "### Targets\n\n" + table(columns, rows, markdown=True)


def readme_block(results: dict, sections: list[Section]) -> str:
    by_name = {s.name: s for s in sections}
    parts = [f"Measured by `python -m benchmarks` on: {one_line(results['machine'])}."]
    model = by_name.get("model")
    if model and model.rows:
        size = headline_size(model.rows)
        rows = [r for r in model.rows if r["size"] == size]
        columns = {k: v for k, v in model.columns.items() if k != "size"}
        parts.append(f"**Models** at {size} ({model.title.split(': ', 1)[1]}):\n\n"
                     + table(columns, rows, markdown=True))
    runtimes = by_name.get("runtimes")
    if runtimes and runtimes.rows:
        size = headline_size(runtimes.rows)
        parts.append(f"**{runtimes.title}**, at {size}:\n\n" + table(
            runtimes.columns, [r for r in runtimes.rows if r["size"] == size], markdown=True))
    for name in ("pipeline", "transport", "consumers"):
        section = by_name.get(name)
        if section and section.rows:
            parts.append(f"**{section.title}**:\n\n" + table(section.columns, section.rows,
                                                              markdown=True))
    gpu = by_name.get("gpu")
    if gpu and gpu.skipped:
        parts.append(f"**GPU**: skipped on this machine ({gpu.skipped}).")
    parts.append(targets_markdown(sections).replace("### Targets\n\n", "**Targets**:\n\n"))
    return "\n\n".join(parts)


def update_readme(readme: Path, block: str) -> None:
    """Replace the text between the benchmark markers (written atomically)."""
    text = readme.read_text()
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme}: no {README_START} ... {README_END} block to replace")
    new = pattern.sub(lambda _: f"{README_START}\n{block}\n{README_END}", text)
    atomic_write_text(readme, new)
