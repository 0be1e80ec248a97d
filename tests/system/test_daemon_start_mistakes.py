"""stylecastd started with a mistake in it (issue #17): a real daemon process must stop with one
line that names the mistake (exit 78) before it binds anything or says where to watch it, and
say where to watch it only once frames are out, on a port that is free."""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path

from stylecast.daemon.config import bundled_styles
from stylecast.daemon.service import HINT_PORT

from support.daemon_process import SMALL_TEST_SOURCE

README = Path(__file__).resolve().parents[2] / "README.md"


def one_error_line(daemon) -> str:
    code, err = daemon.wait()
    assert code == 78, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_an_unknown_active_style_stops_the_start(daemon_with, folder):
    config = folder / "typo.toml"
    config.write_text('[styles]\nactive = "grate-wave"\n')  # the bundled: great-wave, ...
    daemon = daemon_with("--config", str(config), "--source", SMALL_TEST_SOURCE)
    assert one_error_line(daemon) == (
        f"stylecastd: error: {config}: key 'styles.active' = 'grate-wave' is not a style (did "
        f"you mean 'great-wave'?); the bundled styles are {', '.join(bundled_styles())}")
    assert not (daemon.folder / "control").exists()  # nothing was bound


def test_an_unknown_active_style_among_configured_ones(daemon_with, folder, models):
    config = folder / "typo.toml"
    config.write_text(f'[styles]\nactive = "nope"\n[styles.models]\ninvert = "{models["invert"]}"'
                      f'\nwarm = "{models["warm"]}"\n')
    line = one_error_line(daemon_with("--config", str(config), "--source", SMALL_TEST_SOURCE))
    assert line == (f"stylecastd: error: {config}: key 'styles.active' = 'nope' is not a style; "
                    "the configured styles are invert, warm")


def test_a_text_file_given_as_the_model(daemon_with):
    daemon = daemon_with("--model", str(README), "--source", SMALL_TEST_SOURCE)
    assert one_error_line(daemon) == (
        f"stylecastd: error: {README}: not a model (expected ONNX or a TensorRT engine)")


def test_a_source_that_does_not_open_is_never_announced(daemon_with, folder, models):
    missing = folder / "missing.mp4"
    daemon = daemon_with("--model", str(models["invert"]), "--source", f"file://{missing}")
    code, err = daemon.wait()
    assert code == 78, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("stylecastd: error: ") and str(missing) in last
    assert "publishing on" not in err and "watch it" not in err


def test_where_to_watch_is_said_after_the_first_frame_on_a_free_port(daemon_with, models):
    with socket.socket() as taken:  # the hint's usual port, held (unless already held elsewhere)
        try:
            taken.bind(("127.0.0.1", HINT_PORT))
            taken.listen()
        except OSError:
            pass
        daemon = daemon_with("--model", str(models["invert"]), "--source", SMALL_TEST_SOURCE)
        daemon.notify.wait_for("READY=1")
        daemon.signal(signal.SIGTERM)
        code, err = daemon.wait()
    assert code == 0, err
    messages = [line.split(": ", 1)[-1] for line in err.splitlines()]
    ready = messages.index("first frame published: ready")
    publishing = next(i for i, m in enumerate(messages) if m.startswith("publishing on "))
    hint = next(i for i, m in enumerate(messages) if m.startswith("watch it: "))
    assert ready < publishing < hint
    port = int(re.search(r"--http 127\.0\.0\.1:(\d+), then open http://127\.0\.0\.1:\1/",
                         messages[hint])[1])
    assert port != HINT_PORT
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free: a stylecast-sub --http could take it
