"""User-facing errors and the exit codes that go with them.

A user mistake (bad config, bad artifact, bad input file) is reported as one line and exits with
EX_CONFIG (78), which the systemd unit lists in RestartPreventExitStatus= so a broken config never
restart-loops. Anything else is a runtime failure (exit 1) that systemd may restart.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

EX_OK = 0
EX_FAILURE = 1
EX_USAGE = 2
EX_CONFIG = 78  # sysexits.h


class StylecastError(Exception):
    """A failure whose message is the whole story: reported as one line, no traceback."""

    exit_code = EX_FAILURE


class DiskFullError(StylecastError):
    """A file could not be written because its disk is full (ENOSPC). A runtime failure, exit 1:
    the command and its inputs are right; freeing space and running it again fixes it."""


class UserError(StylecastError):
    """A mistake in what the user gave us."""

    exit_code = EX_CONFIG


class ConfigError(UserError):
    """A config file or flag that cannot be used."""


class ArtifactError(UserError):
    """A model artifact that is missing, unreadable or carries a contract we do not understand."""


class InputError(UserError):
    """An input file or folder (images, checkpoints) that cannot be used."""


def run_cli(prog: str, main: Callable[[], int | None]) -> int:
    """Run a command's body, turning our errors into one line on stderr and an exit code."""
    try:
        return main() or EX_OK
    except StylecastError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
