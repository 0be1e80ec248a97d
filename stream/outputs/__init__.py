"""stylecast-sub outputs: one module per way a subscription leaves the program, each a plug-in
of one interface (base.py: Output, OutputPlugin, OutputContext).

A new output is one module with a module-level `PLUGIN` and one line in PLUGINS below. The order
is the order of their flags in --help and of their start lines on stderr: the browser page's
`serving http://...` comes first, where scripts look for it.
"""

from __future__ import annotations

from stylecast.stream.outputs import browser_output, recorder, rtsp, v4l2, webrtc, window
from stylecast.stream.outputs.base import OutputPlugin

PLUGINS: tuple[OutputPlugin, ...] = (
    window.PLUGIN,
    browser_output.PLUGIN,
    recorder.PLUGIN,
    rtsp.PLUGIN,
    v4l2.PLUGIN,
    webrtc.PLUGIN,
)
