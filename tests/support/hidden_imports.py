"""Make an installed package look missing, to test the one-line message a user without it gets."""

from __future__ import annotations

import builtins


def hide_package(monkeypatch, package: str) -> None:
    """`import package` (and its submodules) raises ImportError until the test ends."""
    real_import = builtins.__import__

    def without(name, *args, **kwargs):
        if name == package or name.startswith(f"{package}."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
