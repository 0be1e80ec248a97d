"""--http (and --control) as an output: the browser page of browser.py, fed by the subscription.

Apart from the HTTP server itself (browser.py) because it wires in the split view's raw feed,
which is built on browser.py's LatestJpeg.
"""

from __future__ import annotations

import argparse
from typing import Any

from stylecast.stream.client import Frame, Subscriber
from stylecast.stream.outputs.base import OutputContext, OutputPlugin, say
from stylecast.stream.outputs.browser import LatestJpeg, MjpegServer, parse_host_port
from stylecast.stream.outputs.control_proxy import ControlProxy
from stylecast.stream.outputs.raw_feed import RawFeed

# The newest header's keys the browser page shows.
PAGE_FIELDS = ("seq", "width", "height", "format", "style", "stream", "strength", "smoothing",
               "timing_ms", "dropped")


class BrowserOutput:
    """The page's newest frame and its server; /stats.json from the subscription."""

    def __init__(self, args: argparse.Namespace, context: OutputContext) -> None:
        self.context = context
        self.latest = LatestJpeg()
        self.subscriber: Subscriber | None = None
        self.server = page_server(args, context, self.latest, self.stats)

    def start(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        self.server.start()
        say(f"serving {self.server.url}")

    def write(self, frame: Frame) -> bool:
        self.latest.put(frame)
        return True

    def poll(self) -> bool:
        return True

    def close(self, completed: bool) -> str | None:
        self.server.close()
        return None

    def stats(self) -> dict[str, Any]:
        header = self.context.last_header()
        last = {key: header.get(key) for key in PAGE_FIELDS}
        stats = self.subscriber.stats() if self.subscriber is not None else {}
        return {"endpoint": self.context.endpoint, **stats, "last": last}


def page_server(args: argparse.Namespace, context: OutputContext, latest: LatestJpeg,
                stats: Any) -> MjpegServer:
    """The page's server: controls with --control, a split view unless the page already shows
    the raw topic."""
    control = ControlProxy(args.control, context.curve) if args.control is not None else None
    raw = RawFeed(context.endpoint, context.curve) if context.topic == "stylized" else None
    try:
        return MjpegServer(*args.http, latest, stats, control=control, raw=raw)
    except BaseException:
        for part in (control, raw):
            if part is not None:
                part.close()
        raise


def host_port(text: str) -> tuple[str, int]:
    try:
        return parse_host_port(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http", type=host_port, metavar="HOST:PORT",
                        help="serve a live page (MJPEG) to browsers; a bare PORT is on "
                        "127.0.0.1 (port 0: any free port)")
    parser.add_argument("--control", metavar="ENDPOINT",
                        help="with --http: the daemon's control endpoint (e.g. "
                        "ipc:///run/stylecast/control); the page then has the daemon's controls. "
                        "No authentication: whoever reaches the page controls the daemon")


def open_output(args: argparse.Namespace, context: OutputContext) -> BrowserOutput | None:
    if args.control is not None and args.http is None:
        context.usage_error("--control needs --http (the controls are on the browser page)")
    if args.http is None:
        return None
    return BrowserOutput(args, context)


PLUGIN = OutputPlugin("browser", add_arguments, open_output)
