"""The four panels of results.png, each drawn from one section's rows (a missing or skipped
section leaves its panel saying so)."""

from __future__ import annotations

import numpy as np

from benchmarks.common import headline_size

PRECISION_COLORS = {"fp32": "#4c72b0", "fp16": "#dd8452", "int8": "#55a868"}


def _empty(axis, title: str, why: str) -> None:
    axis.set_title(title)
    axis.text(0.5, 0.5, why, ha="center", va="center", wrap=True, transform=axis.transAxes)
    axis.set_axis_off()


def _rows(axis, sections: dict, name: str, title: str) -> list[dict] | None:
    """The section's rows, or None with the panel marked as not run."""
    section = sections.get(name)
    if not section or not section["rows"]:
        _empty(axis, title, f"{name} section not run")
        return None
    return section["rows"]


def model_latency(axis, sections: dict) -> None:
    title = "Model latency (ONNX Runtime CPU)"
    if (rows := _rows(axis, sections, "model", title)) is None:
        return
    size = headline_size(rows)
    rows = [r for r in rows if r["size"] == size]
    networks = list(dict.fromkeys(r["network"] for r in rows))
    x = np.arange(len(networks))
    for offset, precision in enumerate(PRECISION_COLORS):
        values = [next((r["ms"] for r in rows if r["network"] == n and r["precision"] == precision),
                       np.nan) for n in networks]
        axis.bar(x + (offset - 1) * 0.27, values, 0.27, label=precision,
                 color=PRECISION_COLORS[precision])
    axis.set_yscale("log")
    axis.set_xticks(x, networks, rotation=20, fontsize=8)
    axis.set_ylabel(f"ms per frame at {size} (log)")
    axis.set_title(title)
    axis.legend()


def pipeline_fps(axis, sections: dict) -> None:
    title = "stylecastd (on demand) vs bare engine; added latency at a camera's rate"
    if (rows := _rows(axis, sections, "pipeline", title)) is None:
        return
    x = np.arange(len(rows))
    axis.bar(x - 0.2, [r["bare_fps"] for r in rows], 0.4, label="bare engine", color="#8c8c8c")
    axis.bar(x + 0.2, [r["daemon_fps"] for r in rows], 0.4, label="through stylecastd",
             color="#4c72b0")
    for i, row in enumerate(rows):
        axis.text(i + 0.2, row["daemon_fps"], f"{row['ratio']:.2f}x\nadded p50 "
                  f"{row['added_ms_p50']:.1f} ms @30", ha="center", va="bottom", fontsize=8)
    axis.axhline(30, color="#c44e52", linestyle="--", linewidth=1, label="30 fps target")
    axis.set_xticks(x, [f"{r['model']} {r.get('size', '')}" for r in rows])
    axis.set_ylabel("frames per second")
    axis.margins(y=0.15)  # room for the labels above the bars
    axis.set_title(title)
    axis.legend(loc="lower right")


def _transport_label(row: dict) -> str:
    subs = f"{row.get('subscribers')}{'+slow' if row.get('slow') else ''}"
    return (f"{row.get('system')} {row.get('mode')} {row.get('format')} "
            f"{row.get('transport')} {subs}")


def _transport_rows(sections: dict) -> list[dict] | None:
    section = sections.get("transport")
    if not section or not section["rows"]:
        return None
    return [r for r in section["rows"] if r.get("recv_fps_mean") is not None]


def transport_fps(axis, sections: dict) -> None:
    rows = _transport_rows(sections)
    title = "Transport: frames/s per subscriber, 640x480"
    if not rows:
        return _empty(axis, title, "transport section not run")
    colors = ["#4c72b0" if r.get("system") == "stylecast" else "#dd8452" for r in rows]
    y = np.arange(len(rows))
    axis.barh(y, [r["recv_fps_mean"] for r in rows], color=colors)
    axis.set_yticks(y, [_transport_label(r) for r in rows], fontsize=6)
    axis.invert_yaxis()
    axis.set_xscale("log")
    axis.set_xlabel("frames/s received per (fast) subscriber, log (blue: stylecast, "
                    "orange: imagezmq)")
    axis.set_title(title)


def transport_latency(axis, sections: dict) -> None:
    rows = _transport_rows(sections)
    title = "Transport: latency p50 / p99, publish -> received"
    if not rows:
        return _empty(axis, title, "transport section not run")
    y = np.arange(len(rows))
    colors = ["#4c72b0" if r.get("system") == "stylecast" else "#dd8452" for r in rows]
    axis.barh(y, [r.get("latency_ms_p99") or np.nan for r in rows], color=colors, alpha=0.35,
              label="p99")
    axis.barh(y, [r.get("latency_ms_p50") or np.nan for r in rows], color=colors, label="p50")
    axis.set_yticks(y, [_transport_label(r) for r in rows], fontsize=6)
    axis.invert_yaxis()
    axis.set_xscale("log")
    axis.set_xlabel("ms (log); pale: p99")
    axis.set_title(title)


PANELS = (model_latency, pipeline_fps, transport_fps, transport_latency)
