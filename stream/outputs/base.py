"""The one interface of stylecast-sub's outputs: what each plug-in module provides.

A module in this package that is an output has a module-level `PLUGIN`, an `OutputPlugin`:
its flags (`add_arguments`) and a way to open it from the parsed flags (`open`, None when its
flag was not given). `stream/outputs/__init__.py` lists the plug-ins in `PLUGINS`; stylecast-sub
opens every one whose flag was given and hands each image frame of its one subscription to all.

The life of an output, all on stylecast-sub's main thread:

    open(args, context)   before subscribing: a mistake fails here (ConfigError, exit 78),
                          before anything else happened
    start(subscriber)     subscribed: say on stderr where it serves or records to
    write(frame)          every image frame; never blocks for long (newest frame wins: slow
                          work runs on a thread of its own and skips frames); False only when
                          the user ended it (closed the window)
    poll()                when no frame came within a wait slice; False ends the run
    close(completed)      once, also after a failed open of a later output; `completed` is
                          False after an error. Returns one line about what it did, or None
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from stylecast.stream.client import Frame, Subscriber
from stylecast.stream.security import ClientKeys


class Output(Protocol):
    def start(self, subscriber: Subscriber) -> None: ...
    def write(self, frame: Frame) -> bool: ...
    def poll(self) -> bool: ...
    def close(self, completed: bool) -> str | None: ...


@dataclass(frozen=True)
class OutputContext:
    """What the outputs of one stylecast-sub run share."""

    endpoint: str  # the daemon's frame endpoint, as given
    topic: str  # "stylized" or "raw"
    curve: ClientKeys | None  # for an output that opens sockets of its own to the daemon
    last_header: Callable[[], dict[str, Any]]  # the newest image frame's header ({} before)
    usage_error: Callable[[str], NoReturn]  # a flag mistake: one line, exit 2
    program: str = "stylecast-sub"


@dataclass(frozen=True)
class OutputPlugin:
    name: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    open: Callable[[argparse.Namespace, OutputContext], Output | None]


def say(line: str) -> None:
    """A line about where an output serves or records to, on stderr."""
    print(line, file=sys.stderr, flush=True)
