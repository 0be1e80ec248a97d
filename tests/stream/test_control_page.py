"""stylecast-sub's browser page with the daemon's controls (issue #20), against a real stylecastd
on the test card: its JSON endpoints over plain HTTP, what it refuses, the view-only page, the
split view's raw stream, and the page itself driven in headless Chromium through Selenium (pick
a style, move the sliders, pause, split) while a plain SUB socket watches the frame headers
change.

STYLECAST_WRITE_SCREENSHOT=1 also writes the page as docs/control-page.png (docs/consumers.md
shows it), with the bundled styles instead of the tiny test models: slower, but a picture worth
showing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stylecast.stream.outputs.browser import page_html, parse_host_port
from stylecast.stream.sub import main

from support.browser import driven_chromium
from support.daemon_process import receive
from support.page_server import get, post_json, request, serving_url

SUB = Path(sys.executable).with_name("stylecast-sub")
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "control-page.png"
SOURCE = "test://?width=160&height=120&fps=15"
WRITE_SCREENSHOT = os.environ.get("STYLECAST_WRITE_SCREENSHOT") == "1"
WAIT_S = 60.0  # generous: a shared 2-core machine
START_S = 120.0  # to READY=1 there, where imports alone can take 30 s


@pytest.fixture
def styles(models) -> dict[str, Path]:
    """Two styles, the first one active: tiny test models, or for the docs the bundled ones."""
    if WRITE_SCREENSHOT:
        from stylecast.daemon.config import DEFAULT_BUNDLED_STYLE, bundled_styles

        bundled = bundled_styles()
        default = DEFAULT_BUNDLED_STYLE if DEFAULT_BUNDLED_STYLE in bundled else next(iter(bundled))
        other = next(name for name in bundled if name != default)
        return {default: bundled[default], other: bundled[other]}
    return models


@pytest.fixture
def daemon(daemon_with, folder, styles):
    """A daemon that also publishes raw frames, with a strength set for its second style in the
    config; frames flowing."""
    first, second = styles
    config = folder / "raw.toml"
    # ONNX Runtime named, so that "auto" does not time a second runtime at load.
    config.write_text('[engine]\nruntime = "onnxruntime"\n[publish]\nraw = true\n'
                      f'[styles]\nactive = "{first}"\n[styles.models]\n'
                      + "".join(f'{name} = "{path}"\n' for name, path in styles.items())
                      + f"[styles.{second}]\nstrength = 0.8\n")
    source = "test://?width=320&height=240&fps=10" if WRITE_SCREENSHOT else SOURCE
    started = daemon_with("--config", str(config), "--source", source)
    started.notify.wait_for("READY=1", START_S)
    started.notify.keep_draining()
    return started


@pytest.fixture
def page(daemon, processes) -> tuple[str, int]:
    """Where stylecast-sub serves the page with the daemon's controls."""
    return serving_url(processes(daemon.publish, "--http", "127.0.0.1:0", "--control",
                                 daemon.control))


def get_json(address, path: str) -> tuple[int, dict]:
    response, body = get(address, path)
    return response.status, json.loads(body)


def header_with(sub, **wanted) -> dict:
    """The header of the first frame with the `wanted` values, within WAIT_S. `sub` keeps only
    the newest frames (hwm=2), so frames from before the change do not queue up in front."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        header = receive(sub)[1]
        if all(header[key] == value for key, value in wanted.items()):
            return header
    raise AssertionError(f"no frame with {wanted} within {WAIT_S} s; the last: {header}")


def test_the_json_endpoints_are_the_control_socket(daemon, page, styles):
    first, _ = styles
    sub = daemon.subscribe(b"stylized", hwm=2)
    status, reply = get_json(page, "/control/status")
    assert status == 200 and reply["ok"] and reply["style"] == first
    assert reply["topics"] == ["stylized", "raw", "stats"]
    status, reply = get_json(page, "/control/styles")
    assert status == 200 and [s["name"] for s in reply["styles"]] == list(styles)
    assert post_json(page, "/control", {"cmd": "set_strength", "value": 0.4}) == (
        200, {"ok": True, "style": first, "strength": 0.4, "smoothing": 0.0})
    assert header_with(sub, strength=0.4)["style"] == first
    assert post_json(page, "/control", {"cmd": "set_smoothing", "value": 2}) == (200, {
        "ok": False,
        "error": "'set_smoothing' argument 'value' = 2: Input should be less than or equal to 1"})
    stats = stats_once(page, lambda last: last.get("strength") == 0.4)
    assert stats["control"] is True and stats["raw"] == {"viewers": 0, "receiving": False}
    assert stats["last"]["strength"] == 0.4 and stats["last"]["smoothing"] == 0.0


def stats_once(page, done, timeout_s: float = 10.0) -> dict:
    """/stats.json once its newest header passes `done`: the page's own subscriber may get the
    frame after the test's subscriber did (or the last answer, when time runs out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        _, stats = get_json(page, "/stats.json")
        if done(stats["last"]) or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


@pytest.mark.parametrize("method, path, body, headers, status, error", [
    ("POST", "/control", b'{"cmd": "pause"}', {"Content-Type": "text/plain"}, 415,
     "send the command as JSON (Content-Type: application/json)"),
    ("POST", "/control", b'{"cmd": "pause"}',
     {"Content-Type": "application/json", "Origin": "http://example.com"}, 403,
     "Origin 'http://example.com' is not this server"),
    ("GET", "/control/status", None, {"Host": "rebound.example.com"}, 403,
     "Host 'rebound.example.com' is not this loopback server"),
    ("POST", "/control", b'["pause"]', {"Content-Type": "application/json"}, 400,
     "the body must be one JSON object"),
])
def test_commands_from_elsewhere_are_refused(daemon, page, method, path, body, headers, status,
                                             error):
    response, data = request(page, method, path, body, headers)
    assert (response.status, json.loads(data)) == (status, {"ok": False, "error": error})
    assert daemon.request({"cmd": "status"})["paused"] is False


def test_a_daemon_that_does_not_answer_is_a_502(daemon, page):
    daemon.signal(signal.SIGTERM)
    daemon.wait(START_S)
    status, reply = post_json(page, "/control", {"cmd": "pause"})
    assert status == 502 and reply["ok"] is False and "is stylecastd running?" in reply["error"]


def test_without_control_the_page_is_view_only(daemon, processes):
    address = serving_url(processes(daemon.publish, "--http", "127.0.0.1:0"))
    response, body = get(address, "/")
    assert response.status == 200 and body == page_html()
    assert get_json(address, "/control/status") == (404, {
        "ok": False, "error": "view only: stylecast-sub was started without --control"})
    assert get_json(address, "/stats.json")[1]["control"] is False


def test_a_bare_port_is_served_on_loopback():
    assert parse_host_port("8080") == ("127.0.0.1", 8080)
    assert parse_host_port("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_host_port("[::1]:0") == ("::1", 0)
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        parse_host_port("70000")


def test_control_needs_http(capsys):
    with pytest.raises(SystemExit) as usage:
        main(["ipc:///tmp/frames", "--control", "ipc:///tmp/control"])
    assert usage.value.code == 2
    assert capsys.readouterr().err.strip().endswith("--control needs --http (the controls are "
                                                    "on the browser page)")


def test_the_raw_stream_is_subscribed_only_while_watched(daemon, page):
    import http.client

    connection = http.client.HTTPConnection(*page, timeout=WAIT_S)
    connection.request("GET", "/raw.mjpg")
    stream = connection.getresponse()
    assert stream.status == 200
    assert stream.readline().startswith(b"--")  # the first raw frame arrived as a part
    status = get_json(page, "/stats.json")[1]
    assert status["raw"] == {"viewers": 1, "receiving": True}
    assert "raw" in daemon.request({"cmd": "status"})["subscriptions"]
    connection.close()


def test_the_page_in_chromium_switches_style_and_strength(daemon, page, styles, folder):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    _, second = styles
    width = daemon.request({"cmd": "status"})["source"]["size"]["width"]
    sub = daemon.subscribe(b"stylized", hwm=2)
    with driven_chromium(folder, height=640) as browser:
        wait = WebDriverWait(browser, WAIT_S)

        def text(element_id: str) -> str | None:
            return browser.execute_script(
                f"return document.getElementById('{element_id}')?.textContent")

        browser.get(f"http://{page[0]}:{page[1]}/")
        wait.until(lambda _: len(browser.find_elements(By.CSS_SELECTOR, "#style option")) == 2)
        assert browser.find_element(By.ID, "controls").is_displayed()

        Select(browser.find_element(By.ID, "style")).select_by_value(second)
        header_with(sub, style=second, strength=0.8)  # the style's strength from the config
        wait.until(lambda _: text("frame-style") == f"style {second}")

        slider = browser.find_element(By.ID, "strength")
        ActionChains(browser).click_and_hold(slider).move_by_offset(
            -slider.size["width"] // 5, 0).release().perform()
        value = float(slider.get_attribute("value"))
        assert 0.1 < value < 0.5, value  # from the middle, a fifth of the way to the left
        header_with(sub, style=second, strength=value)
        wait.until(lambda _: text("frame-strength") == f"strength {value:.2f}")

        smoothing = browser.find_element(By.ID, "smoothing")
        smoothing.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
        value = float(smoothing.get_attribute("value"))
        assert value == 0.03, value  # three steps of 0.01 from 0
        header_with(sub, style=second, smoothing=value)
        wait.until(lambda _: text("frame-smoothing") == "smoothing 0.03")

        browser.find_element(By.ID, "pause").click()
        wait.until(lambda _: text("pause") == "resume" and text("state") == "paused")
        assert daemon.request({"cmd": "status"})["paused"] is True
        browser.find_element(By.ID, "pause").click()
        wait.until(lambda _: text("pause") == "pause" and text("state") == "running")

        browser.find_element(By.ID, "split").click()
        wait.until(lambda _: browser.execute_script(
            "return document.getElementById('raw').naturalWidth") == width)
        wait.until(lambda _: "capture" in text("fps") and "p95" in text("latency")
                   and "ms" in text("age"))
        ActionChains(browser).click_and_hold(slider).move_by_offset(
            slider.size["width"] * 3 // 10, 0).release().perform()  # to about 0.8
        value = float(slider.get_attribute("value"))
        header_with(sub, strength=value)
        wait.until(lambda _: text("frame-strength") == f"strength {value:.2f}")
        assert text("message") == ""
        shot = folder / "page.png"
        browser.save_screenshot(str(shot))
        if WRITE_SCREENSHOT:
            browser.save_screenshot(str(DOCS_SCREENSHOT))
    assert_shows_the_stream(shot)


def assert_shows_the_stream(shot: Path) -> None:
    """The page alone is dark grey with light text; the test card brings saturated colours."""
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 100).sum() > 5000, "the stream did not show in the page"
