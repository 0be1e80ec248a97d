"""Each style's strength and smoothing while the daemon runs: the config's values at start,
changed live over the control socket, read by the inference stage on every frame.

A change replaces the whole mapping in one assignment, so the inference stage reads either the
old values or the new ones, without a lock: a change shows from the next frame on and never
holds a frame up.
"""

from __future__ import annotations

from collections.abc import Mapping

from stylecast.daemon.config import StyleTuning

KNOBS = ("strength", "smoothing")


class StyleTunings:
    """Strength and smoothing by style name."""

    def __init__(self, at_start: Mapping[str, StyleTuning]) -> None:
        self._tunings = dict(at_start)

    def of(self, style: str) -> StyleTuning:
        return self._tunings.get(style) or StyleTuning()

    def set(self, style: str, knob: str, value: float) -> StyleTuning:
        """Set one knob ("strength" or "smoothing", already checked to be 0..1) of `style`."""
        if knob not in KNOBS:
            raise ValueError(f"no knob {knob!r} (expected one of {', '.join(KNOBS)})")
        tuning = self.of(style).model_copy(update={knob: float(value)})
        self._tunings = {**self._tunings, style: tuning}
        return tuning
