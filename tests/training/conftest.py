"""Training tests keep teacher renders out of the user's cache: the render cache's default folder
is $XDG_CACHE_HOME/stylecast/teachers, so XDG_CACHE_HOME points at a temporary folder here (and
in the commands the tests start, which inherit it)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _teacher_renders_in_a_temporary_cache(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    patch.undo()
