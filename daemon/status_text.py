"""The daemon's status object (docs/protocol.md, "Stats") as a short summary for people: what
`stylecast-ctl status` and `stylecast-ctl watch` print. Keys a daemon does not send are shown
as "-", so an older daemon's status reads too.
"""

from __future__ import annotations

from typing import Any

# What each count in `dropped` means, for someone who has not read the protocol page.
DROPS = {
    "infer": "replaced before inference (the engine is slower than the camera)",
    "publish": "replaced before publishing (sending is slower than inference)",
    "engine": "failed in the engine (skipped)",
    "invalid": "malformed from the source (skipped)",
}
STAGES = ("capture", "infer", "publish")


def summary(status: dict[str, Any]) -> str:
    """A few labelled lines: state, style, engine, source, fps, latency, frame age, drops,
    uptime."""
    lines = [("state", state(status)), ("style", style(status)),
             ("engine", str(status.get("engine", "-"))), ("source", source(status)),
             ("fps", fps(status)), ("latency", latency(status)),
             ("frame age", frame_age(status)), ("dropped", dropped(status)),
             ("uptime", uptime(status))]
    return "\n".join(f"{label:<10}{text}" for label, text in lines)


def state(status: dict[str, Any]) -> str:
    source = status.get("source") or {}
    source_state = source.get("state", "running")
    if source_state != "running":
        error = source.get("last_error")
        return f"source {source_state}" + (f": {error}" if error else "")
    if status.get("paused"):
        return "paused (frames are captured, not stylized; `stylecast-ctl resume`)"
    if status.get("engine") == "loading":
        return "loading the engine"
    return "running"


def style(status: dict[str, Any]) -> str:
    name = status.get("style") or "-"
    strength, smoothing = status.get("strength"), status.get("smoothing")
    if strength is None and smoothing is None:
        return name
    smooth = "off" if not smoothing else _fraction(smoothing)
    return f"{name} (strength {_fraction(strength)}, smoothing {smooth})"


def source(status: dict[str, Any]) -> str:
    info = status.get("source") or {}
    size = info.get("size")
    shown = f"{size['width']}x{size['height']}" if size else "no frame yet"
    return (f"{info.get('uri', '-')} {info.get('state', '-')}, {shown}; "
            f"{info.get('reopens', 0)} reopens, {info.get('stalls', 0)} stalls")


def fps(status: dict[str, Any]) -> str:
    rates = status.get("fps")
    if not isinstance(rates, dict):
        return "-" if rates is None else f"{rates:.1f}"
    return ", ".join(f"{stage} {rates[stage]:.1f}" for stage in STAGES if stage in rates)


def latency(status: dict[str, Any]) -> str:
    figures = status.get("latency_ms") or {}
    total, infer, added = (figures.get(key) or {} for key in
                           ("capture_to_publish", "infer", "added"))
    return (f"capture to publish p50 {_ms(total.get('p50'))}, p95 {_ms(total.get('p95'))}; "
            f"inference p50 {_ms(infer.get('p50'))}; added by the daemon p50 "
            f"{_ms(added.get('p50'))}")


def frame_age(status: dict[str, Any]) -> str:
    since = (status.get("source") or {}).get("seconds_since_frame")
    return "-" if since is None else f"newest frame captured {since:.2f} s ago"


def dropped(status: dict[str, Any]) -> str:
    counts = status.get("dropped") or {}
    found = [f"{counts[key]} {meaning}" for key, meaning in DROPS.items() if counts.get(key)]
    return "; ".join(found) if found else "none"


def uptime(status: dict[str, Any]) -> str:
    seconds = status.get("uptime_s")
    who = ", ".join(f"{key} {status[key]}" for key in ("version", "pid", "config")
                    if status.get(key) is not None)
    running = "-" if seconds is None else duration(seconds)
    return f"{running} ({who})" if who else running


def duration(seconds: float) -> str:
    """1 h 02 min, 3 min 05 s, 12.5 s."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"


def _fraction(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.1f} ms"
