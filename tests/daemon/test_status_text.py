"""The status summary `stylecast-ctl status` prints for people (daemon/status_text.py)."""

from __future__ import annotations

from stylecast.daemon.status_text import duration, summary

STATUS = {
    "ok": True, "uptime_s": 3725.2,
    "fps": {"capture": 30.0, "infer": 29.8, "publish": 29.79},
    "frames": {"capture": 375, "infer": 371, "publish": 371},
    "latency_ms": {"capture_to_publish": {"p50": 29.1, "p95": 33.0, "p99": 35.2},
                   "infer": {"p50": 27.9, "p95": 31.0, "p99": 32.8},
                   "added": {"p50": 1.1, "p95": 1.9, "p99": 2.5}},
    "dropped": {"infer": 4, "publish": 0, "engine": 1, "invalid": 0},
    "source": {"uri": "v4l2:///dev/video0", "state": "running", "reopens": 1, "stalls": 0,
               "last_error": None, "size": {"width": 640, "height": 480},
               "frame_size": [480, 640], "seconds_since_frame": 0.012},
    "style": "mosaic", "strength": 0.6, "smoothing": 0.0,
    "engine": "onnxruntime CPUExecutionProvider, 2 threads, mosaic.onnx (int8)",
    "paused": False, "topics": ["stylized", "stats"], "subscriptions": ["stylized"],
    "version": "0.1.0", "pid": 1234, "config": "/etc/stylecast/stylecast.toml",
}


def test_the_summary_names_everything_an_operator_looks_at_first():
    assert summary(STATUS) == """\
state     running
style     mosaic (strength 0.60, smoothing off)
engine    onnxruntime CPUExecutionProvider, 2 threads, mosaic.onnx (int8)
source    v4l2:///dev/video0 running, 640x480; 1 reopens, 0 stalls
fps       capture 30.0, infer 29.8, publish 29.8
latency   capture to publish p50 29.1 ms, p95 33.0 ms; inference p50 27.9 ms; added by the \
daemon p50 1.1 ms
frame age newest frame captured 0.01 s ago
dropped   4 replaced before inference (the engine is slower than the camera); 1 failed in \
the engine (skipped)
uptime    1 h 02 min (version 0.1.0, pid 1234, config /etc/stylecast/stylecast.toml)"""


def test_the_state_says_what_is_wrong_first():
    source = {**STATUS["source"], "state": "reopening", "last_error": "camera unplugged"}
    assert summary({**STATUS, "source": source}).splitlines()[0] == (
        "state     source reopening: camera unplugged")
    assert summary({**STATUS, "paused": True}).splitlines()[0].startswith("state     paused")
    assert summary({**STATUS, "engine": "loading"}).splitlines()[0] == (
        "state     loading the engine")


def test_nothing_dropped_and_smoothing_on():
    text = summary({**STATUS, "dropped": dict.fromkeys(STATUS["dropped"], 0), "smoothing": 0.5})
    assert "dropped   none\n" in text and "(strength 0.60, smoothing 0.50)" in text


def test_durations():
    assert [duration(s) for s in (12.54, 185, 3725)] == ["12.5 s", "3 min 05 s", "1 h 02 min"]
