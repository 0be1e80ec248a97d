"""Packaging: the package-dir mapping works from a built wheel and from an editable install, and
the device-side install ([daemon,onnx]) pulls no torch.

These tests build a wheel and create fresh virtual environments, installing dependencies from
the package index (pip's cache makes repeat runs fast). They take about a minute.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import venv
import zipfile
from pathlib import Path

import pytest

from stylecast.daemon.config import DEFAULT_BUNDLED_STYLE

ROOT = Path(__file__).resolve().parents[2]
CODE_FOLDERS = {"training": "stylecast/training", "export": "stylecast/export",
                "daemon": "stylecast/daemon"}
SCRIPTS = ["stylecast-train", "stylecast-export", "stylecastd", "stylecast-sub", "stylecast-ctl"]

pytestmark = pytest.mark.slow


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], check=True,
                   timeout=900, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})


def make_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin" / "python"


def python_out(python: Path, code: str) -> str:
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                            timeout=300, cwd="/")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
                    str(ROOT)], check=True, timeout=600)
    (built,) = out.glob("stylecast-*.whl")
    return built


def test_wheel_maps_every_source_package_into_stylecast(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"stylecast"}, "the wheel must claim no top-level module besides stylecast"
    for folder, package in CODE_FOLDERS.items():
        sources = {p.relative_to(ROOT / folder).as_posix()
                   for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts}
        assert sources, folder
        for source in sources:
            assert f"{package}/{source}" in names, f"{folder}/{source} is missing from the wheel"
    # Data files the code reads: stylecast-sub --http serves this page.
    assert "stylecast/stream/outputs/page.html" in names, "the browser page is not in the wheel"
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for script in SCRIPTS:
        assert f"{script} = stylecast." in entry_points


def test_device_install_from_wheel_has_no_torch(wheel, tmp_path):
    python = make_venv(tmp_path / "device")
    pip(python, f"{wheel}[daemon,onnx]")
    report = python_out(python, (
        "import importlib.util, sys\n"
        "import stylecast.daemon, stylecast.core.artifact, onnxruntime, zmq, numpy\n"
        "print(importlib.util.find_spec('torch') is None, stylecast.daemon.__file__)\n"
    ))
    no_torch, location = report.split()
    assert no_torch == "True", "pip install stylecast[daemon,onnx] pulled in torch"
    assert "site-packages/stylecast/daemon" in location
    for script in SCRIPTS:
        assert (python.parent / script).exists()
    result = subprocess.run([str(python.parent / "stylecastd"), "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "--source" in result.stdout
    # The README's endpoint is the default (the run below publishes on a free port instead).
    assert "(default tcp://127.0.0.1:5555)" in " ".join(result.stdout.split())
    assert_main_job_publishes(python.parent / "stylecastd", tmp_path)


def assert_main_job_publishes(stylecastd: Path, folder: Path) -> None:
    """The README's main job: `stylecastd` with no config (test:// source, bundled style)
    publishes stylized frames soon after it starts.

    One flag more than the README: --publish tcp://127.0.0.1:* (a free port the system picks,
    read back from the daemon's own log line), so another daemon on the README's port 5555 can
    neither break this check nor pass it in our daemon's place. The frames are checked to be this
    daemon's: its control socket (in our RUNTIME_DIRECTORY) reports its pid and our subscription,
    and the first frame is seq 1 (a daemon counts only what it sent to subscribers). That 5555 is
    the default endpoint is checked in --help.
    """
    import zmq

    env = {**os.environ, "RUNTIME_DIRECTORY": str(folder / "run")}  # its control socket
    started = time.monotonic()
    daemon = subprocess.Popen([str(stylecastd), "--publish", "tcp://127.0.0.1:*"], cwd=folder,
                              env=env, stderr=subprocess.PIPE, text=True)
    log_lines: list[str] = []

    def read_log() -> None:
        for line in daemon.stderr:
            log_lines.append(line)

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    try:
        bound = None
        while bound is None and daemon.poll() is None and time.monotonic() - started < 60:
            bound = next((m for m in map(PUBLISHING_LINE.search, list(log_lines)) if m), None)
            time.sleep(0.05)
        assert bound is not None, f"no 'publishing on' line within 60 s:\n{''.join(log_lines)}"
        endpoint, control = bound.group("endpoint"), bound.group("control")
        assert endpoint != "tcp://127.0.0.1:5555"
        sub.connect(endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, b"stylized")
        message = sub.recv_multipart() if sub.poll(60_000) else None
        waited = time.monotonic() - started
        status = control_request(control, {"cmd": "status"}) if message is not None else None
    finally:
        sub.close()
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        reader.join(timeout=10)
    err = "".join(log_lines)
    assert message is not None, f"no stylized frame within 60 s; stylecastd said:\n{err}"
    _, header, payload = message
    header = json.loads(header)
    assert header["style"] == DEFAULT_BUNDLED_STYLE
    assert len(payload) == header["width"] * header["height"] * 3
    assert header["seq"] == 1, header  # the first frame this daemon ever sent to anyone
    assert status["pid"] == daemon.pid and status["subscriptions"] == ["stylized"], status
    assert status["style"] == DEFAULT_BUNDLED_STYLE, status
    assert status["source"]["uri"] == "test://", status
    assert daemon.returncode == 0, err
    print(f"first stylized frame {waited:.1f} s after start, on {endpoint}")


PUBLISHING_LINE = re.compile(r"publishing on (?P<endpoint>tcp://127\.0\.0\.1:\d+); "
                             rf"control on (?P<control>\S+); style '{DEFAULT_BUNDLED_STYLE}'")


def control_request(endpoint: str, request: dict) -> dict:
    import zmq

    req = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(endpoint)
    try:
        req.send(json.dumps(request).encode())
        assert req.poll(10_000), f"no reply from the control socket {endpoint} within 10 s"
        return json.loads(req.recv())
    finally:
        req.close()


def test_editable_install_maps_the_source_folders(tmp_path):
    python = make_venv(tmp_path / "editable")
    pip(python, "-e", str(ROOT))  # core dependencies only: enough to import the package tree
    report = python_out(python, (
        "import importlib.util\n"
        "for name in ('stylecast.training', 'stylecast.export', 'stylecast.daemon'):\n"
        "    print(importlib.util.find_spec(name).origin)\n"
        "print([importlib.util.find_spec(n) for n in ('training', 'export', 'daemon')])\n"
    ))
    *origins, top_level = report.splitlines()
    assert origins == [str(ROOT / folder / "__init__.py") for folder in CODE_FOLDERS]
    assert top_level == "[None, None, None]"
