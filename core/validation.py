"""Turn pydantic validation errors into one line that names each bad key and its value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

# A plain name, usable as a file name with no path: styles, presets, key files.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"


@dataclass(frozen=True)
class Problem:
    key: str  # dotted path of the offending field, "" for the whole object
    kind: str  # pydantic's error type: "missing", "extra_forbidden", "literal_error", ...
    value: Any
    message: str


def problems(err: ValidationError, prefix: str = "") -> list[Problem]:
    found = []
    for item in err.errors():
        key = prefix + ".".join(str(part) for part in item["loc"]) if item["loc"] else ""
        message = item["msg"].removeprefix("Value error, ")
        found.append(Problem(key, item["type"], item.get("input"), message))
    return found


def describe(err: ValidationError, *, noun: str = "key", prefix: str = "",
             unknown: str = "is not a known key") -> str:
    """All problems on one line: "key 'loss.gan' = 'wgan': Input should be 'lsgan' or 'hinge'"."""
    parts = []
    for problem in problems(err, prefix):
        if not problem.key:
            parts.append(problem.message)
        elif problem.kind == "missing":
            parts.append(f"{noun} '{problem.key}' is missing")
        elif problem.kind == "extra_forbidden":
            parts.append(f"{noun} '{problem.key}' {unknown}")
        else:
            parts.append(f"{noun} '{problem.key}' = {problem.value!r}: {problem.message}")
    return "; ".join(parts)
