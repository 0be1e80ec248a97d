"""The consumers section's browser viewer: headless Chromium (Debian's, driven through Selenium
as the tests drive it) playing `stylecast-sub --webrtc`'s page, which measures every shown
frame's age itself (webrtc.html: display wall time less capture wall time).

It has the viewer processes' shape (consumer_viewers.py, seen from here by ViewerProcess in
consumers.py): ready(), start(), stop() -> the same report, with the page's ages in it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from typing import Any

# tests/support/browser.py's flags, and test_webrtc_output.py's for WebRTC on loopback.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--allow-loopback-in-peer-connection",
                  "--disable-features=WebRtcHideLocalIpsWithMdns")
MEASURED_AGES = 5  # the page has matched shown frames to sent ones: it is measuring
# recentAges is the page's own list (its last 300 ages); top-level `const`s of a page script
# are visible to scripts run in the page.
# Keeps the page's peer connection where a script can reach it (the page holds it in a local):
# the same object, only remembered, for its transport's bytesReceived.
KEEP_PEERS = """
const Native = window.RTCPeerConnection;
window.stylecastPeers = [];
window.RTCPeerConnection = function (...args) {
  const made = new Native(...args);
  window.stylecastPeers.push(made);
  return made;
};
window.RTCPeerConnection.prototype = Native.prototype;
"""
BYTES_SCRIPT = """
const done = arguments[arguments.length - 1];
Promise.all(window.stylecastPeers.map((pc) => pc.getStats())).then((reports) => {
  let bytes = 0;
  reports.forEach((report) => report.forEach((entry) => {
    if (entry.type === "transport") bytes += entry.bytesReceived || 0;
  }));
  done(bytes);
}, () => done(null));
"""
STATS_SCRIPT = ("const v = document.querySelector('video'); return Object.assign({}, "
                "window.stylecastStats, {videoWidth: v.videoWidth, videoHeight: v.videoHeight, "
                "recent: recentAges.slice()})")


def missing() -> str | None:
    """Why there is no browser viewer here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "Selenium is not installed (pip install -e '.[dev]')"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "Chromium is not installed (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


class ChromiumViewer:
    """One headless Chromium on the page at `url`, from construction to close()."""

    def __init__(self, url: str) -> None:
        from selenium import webdriver

        self.folder = tempfile.mkdtemp(prefix="scb-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
        options.page_load_strategy = "eager"
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.folder}/profile",
                     "--window-size=1280,760"):
            options.add_argument(flag)
        service = webdriver.ChromeService(shutil.which("chromedriver"),
                                          env={**os.environ, "HOME": self.folder})
        self.driver = webdriver.Chrome(service=service, options=options)
        try:
            self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                        {"source": KEEP_PEERS})
            self.driver.get(url)
        except BaseException:
            self.close()
            raise
        self._start: tuple[dict[str, Any], int | None, int] | None = None

    def processes(self) -> list[Any]:
        """chromedriver and every Chromium process under it."""
        import psutil

        driver = psutil.Process(self.driver.service.process.pid)
        return [driver, *driver.children(recursive=True)]

    def stats(self) -> dict[str, Any]:
        return self.driver.execute_script(STATS_SCRIPT)

    def bytes_received(self) -> int | None:
        """Bytes the page's peer connection received (its transport's bytesReceived)."""
        return self.driver.execute_async_script(BYTES_SCRIPT)

    def ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (stats := self.stats())["ages"] < MEASURED_AGES:
            if stats["state"] == "failed" or time.monotonic() > deadline:
                message = self.driver.find_element("id", "message").text
                raise RuntimeError(f"the page never measured a frame age: state "
                                   f"{stats['state']}, {message!r}")
            time.sleep(0.2)

    def start(self) -> None:
        self._start = (self.stats(), self.bytes_received(), time.monotonic_ns())

    def stop(self) -> dict[str, Any]:
        """The window's frames (decoded by the browser) and the ages measured inside it."""
        assert self._start is not None
        (before, bytes_before, start), after = self._start, self.stats()
        bytes_after, end = self.bytes_received(), time.monotonic_ns()
        seconds = (end - start) / 1e9
        measured = after["ages"] - before["ages"]
        ages = after["recent"][-measured:] if measured > 0 else []
        received = None if bytes_before is None or bytes_after is None else (
            bytes_after - bytes_before)
        viewer = {"frames": after["framesDecoded"] - before["framesDecoded"], "bytes": received,
                  "ages_ms": ages, "dropped": after["framesDropped"] - before["framesDropped"],
                  "size": [after["videoWidth"], after["videoHeight"]],
                  "measured_at": after["measuredAt"]}
        return {"seconds": seconds, "codec": after["codec"], "viewers": [viewer]}

    def close(self) -> None:
        """Leave the page first, as a closed tab does: the page's peer connection closes and
        the server stops encoding for it (a killed browser's would go on until ICE consent
        runs out, about 30 s)."""
        try:
            with contextlib.suppress(Exception):
                self.driver.get("about:blank")
            self.driver.quit()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
