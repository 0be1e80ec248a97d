"""Real browsers for the tests: Debian's headless Chromium (.ci/run installs `chromium` and
`chromium-driver`), run bare for a screenshot or driven through Selenium. Where either is
missing the test is skipped, saying what to install."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Headless Chromium as root on a machine without a usable sandbox (CI containers): no sandbox,
# no GPU, and none of the background traffic a first run starts (QUIC, updates, sync).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")
INSTALL_HINT = "apt-get install chromium chromium-driver; .ci/run installs them"


def chromium() -> str:
    """The Chromium binary, or the test is skipped."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip(f"Chromium is not installed here ({INSTALL_HINT}): the page cannot be "
                    "rendered by a real browser")
    return found


@contextmanager
def driven_chromium(folder: Path, *, width: int = 1280, height: int = 760,
                    flags: tuple[str, ...] = ()) -> Iterator[Any]:
    """A Selenium WebDriver on headless Chromium with a new, empty profile in `folder`, and
    `flags` besides CHROMIUM_FLAGS."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="Selenium is not installed (pip install -e '.[dev]')")
    browser, driver_path = chromium(), shutil.which("chromedriver")
    if driver_path is None:
        pytest.skip(f"chromedriver is not installed here ({INSTALL_HINT})")
    profile = folder / "chromium-profile"
    profile.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    # Do not wait for the page's "load": an MJPEG picture only loads once a frame comes.
    options.page_load_strategy = "eager"
    for flag in (*CHROMIUM_FLAGS, *flags, f"--user-data-dir={profile}",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    # The driver path is given, so Selenium Manager never looks for (or downloads) one.
    service = webdriver.ChromeService(driver_path, env={**os.environ, "HOME": str(folder)})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
