"""The daemon's HTTP metrics: a real daemon on the test:// source with the bundled style, scraped
over real HTTP and parsed with prometheus_client's own parser; /healthz by the watchdog's rule."""

from __future__ import annotations

import json
import signal
import socket
import threading
import urllib.error
import urllib.request

import psutil
import zmq
from prometheus_client.parser import text_string_to_metric_families

from stylecast.core.errors import EX_CONFIG
from stylecast.daemon.metrics import DaemonMetrics
from stylecast.daemon.notify import SystemdNotifier
from stylecast.daemon.service import Daemon

from support.waiting import wait_until

SOURCE = "test://?width=160&height=120&fps=30"


def make_daemon(folder, **overrides) -> Daemon:
    settings = {"source.uri": SOURCE, "metrics.listen": "127.0.0.1:0",  # a port the OS picks
                "publish.endpoints": [f"ipc://{folder}/frames"],
                "control.endpoint": f"ipc://{folder}/control", **overrides}
    return Daemon(None, settings, notifier=SystemdNotifier({}))


def run_with(daemon: Daemon, check) -> dict:
    """Run the daemon in this (main) thread while `check(daemon)` runs in another; stop it after.
    What `check` returns or raises comes back here."""
    outcome: dict = {}

    def watch():
        try:
            outcome["result"] = check(daemon)
        except BaseException as err:  # re-raised in the test's thread
            outcome["error"] = err
        finally:
            daemon._requested = "stop"  # what the SIGTERM handler does

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    outcome["code"] = daemon.run()
    watcher.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome


def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a real HTTP GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def served_url(daemon: Daemon) -> str:
    return wait_until(lambda: daemon.metrics_server and daemon.metrics_server.url,
                    "no metrics server")


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    status, content_type, text = get(url + "/metrics")
    assert status == 200 and content_type.startswith("text/plain"), (status, content_type)
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def control(daemon: Daemon, request: dict) -> dict:
    req = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(daemon.control.endpoint)
    try:
        req.send(json.dumps(request).encode())
        assert req.poll(10_000), "no control reply within 10 s"
        return json.loads(req.recv())
    finally:
        req.close()


def published(daemon: Daemon) -> bool:
    return daemon.pipeline is not None and daemon.pipeline.first_published.is_set()


def frames(samples, stage: str) -> float:
    return samples[("stylecast_frames_total", (("stage", stage),))]


def test_the_figures_move_between_two_scrapes(folder):
    def two_scrapes(daemon):
        url = served_url(daemon)
        wait_until(lambda: published(daemon), "no frame published")
        first = scrape(url)
        wait_until(lambda: frames(scrape(url), "publish") > frames(first, "publish") + 5,
                 "the publish counter did not move")
        return first, scrape(url)

    first, second = run_with(make_daemon(folder), two_scrapes)["result"]
    for stage in ("capture", "infer", "publish"):
        assert frames(second, stage) > frames(first, stage) > 0, stage
        assert ("stylecast_frames_per_second", (("stage", stage),)) in second
    for histogram in ("capture_to_publish", "inference", "added_latency"):
        count = f"stylecast_{histogram}_seconds_count"
        assert second[(count, ())] > first[(count, ())] > 0, histogram
        assert second[(f"stylecast_{histogram}_seconds_sum", ())] > 0
        assert second[(f"stylecast_{histogram}_seconds_bucket", (("le", "+Inf"),))] == \
            second[(count, ())]
    reasons = {dict(labels)["reason"] for name, labels in second
               if name == "stylecast_frames_dropped_total"}
    assert reasons == {"replaced_before_inference", "replaced_before_publish", "engine_error",
                       "invalid_frame"}
    assert second[("stylecast_source_state", (("state", "running"),))] == 1
    assert second[("stylecast_source_state", (("state", "stalled"),))] == 0
    assert second[("stylecast_source_reopens_total", ())] == 0
    assert second[("stylecast_paused", ())] == 0
    engine = next(dict(labels) for name, labels in second if name == "stylecast_engine_info")
    assert engine["style"] == "cafe-terrace" and engine["precision"] == "int8", engine
    assert engine["runtime"] in ("onnxruntime", "openvino"), engine  # runtime = "auto" times both
    assert engine["engine"].startswith(engine["runtime"] + " "), engine
    assert second[("stylecast_style_strength", (("style", "cafe-terrace"),))] == 1.0
    assert ("stylecast_topic_subscribed", (("topic", "stylized"),)) in second
    assert second[("process_resident_memory_bytes", ())] > 0


def test_healthz_is_200_only_while_stylized_frames_go_out_and_404_elsewhere(folder):
    def health_over_a_pause(daemon):
        url = served_url(daemon)
        wait_until(lambda: published(daemon) and get(url + "/healthz")[0] == 200,
                 "/healthz never said 200")
        flowing = get(url + "/healthz")
        assert control(daemon, {"cmd": "pause"})["ok"]
        paused = get(url + "/healthz")
        assert control(daemon, {"cmd": "resume"})["ok"]
        resumed = wait_until(lambda: (r := get(url + "/healthz"))[0] == 200 and r,
                           "/healthz did not come back after resume")
        return flowing, paused, resumed, get(url + "/"), get(url + "/metrics/extra")

    flowing, paused, resumed, root, other = run_with(make_daemon(folder),
                                                     health_over_a_pause)["result"]
    assert flowing[0] == 200 and flowing[2] == "ok: frames are flowing\n"
    assert paused[0] == 503 and paused[2].startswith("paused") and paused[2].count("\n") == 1
    assert resumed[0] == 200
    assert root[0] == other[0] == 404


def test_healthz_is_503_before_the_first_frame(folder):
    def before_any_frame(daemon):
        url = served_url(daemon)
        wait_until(lambda: daemon.heartbeat is not None, "no pipeline")
        return get(url + "/healthz"), scrape(url)

    daemon = make_daemon(folder, **{"source.uri": "v4l2:///dev/video99"})  # never a frame
    (status, _, body), samples = run_with(daemon, before_any_frame)["result"]
    assert status == 503 and body == "no frame published yet\n"
    assert samples[("stylecast_capture_to_publish_seconds_count", ())] == 0
    assert samples[("stylecast_frames_total", (("stage", "publish"),))] == 0
    engine = next(dict(labels) for name, labels in samples if name == "stylecast_engine_info")
    assert engine["engine"] == "loading"


def test_a_reload_keeps_the_endpoint_and_the_histograms_and_restarts_the_counts(folder):
    def across_a_reload(daemon):
        url = served_url(daemon)
        wait_until(lambda: published(daemon), "no frame published")
        before, first_pipeline = scrape(url), daemon.pipeline
        daemon._reload_requested = True  # what the SIGHUP handler does
        wait_until(lambda: daemon.pipeline is not first_pipeline and published(daemon),
                 "no frame after the reload")
        return before, daemon.metrics_server.url, url, scrape(url)

    before, url_after, url_before, after = run_with(make_daemon(folder), across_a_reload)["result"]
    assert url_after == url_before
    count = ("stylecast_capture_to_publish_seconds_count", ())
    assert after[count] > before[count]
    assert frames(after, "publish") < after[count]  # counted afresh; the histogram was not


def test_each_daemon_has_a_registry_of_its_own():
    one, other = DaemonMetrics(lambda: None), DaemonMetrics(lambda: None)  # no clash on names
    one.latency.observe("infer", 12.0)
    count = "stylecast_inference_seconds_count"
    assert one.registry.get_sample_value(count) == 1
    assert other.registry.get_sample_value(count) == 0
    assert one.registry.get_sample_value("stylecast_inference_seconds_sum") == 0.012


def listening_ports(pid: int) -> list[int]:
    return [c.laddr.port for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN]


def test_metrics_are_off_by_default_and_the_flag_turns_them_on(daemon_with):
    quiet = daemon_with()
    quiet.notify.wait_for("READY=1")
    assert listening_ports(quiet.process.pid) == []  # ipc endpoints; no HTTP port either
    quiet.signal(signal.SIGTERM)
    assert quiet.wait()[0] == 0

    port = free_port()
    served = daemon_with("--metrics", f"127.0.0.1:{port}")
    served.notify.wait_for("READY=1")
    assert listening_ports(served.process.pid) == [port]
    status, _, body = get(f"http://127.0.0.1:{port}/healthz")
    assert status == 200, body
    served.signal(signal.SIGTERM)
    code, err = served.wait()
    assert code == 0
    assert f"metrics on http://127.0.0.1:{port}/metrics" in err


def test_a_taken_port_is_one_line_and_exit_78(daemon_with):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = daemon_with("--metrics", f"127.0.0.1:{port}")
        code, err = daemon.wait()
    assert code == EX_CONFIG
    assert err.strip().splitlines()[-1] == (
        f"stylecastd: error: key 'metrics.listen' = '127.0.0.1:{port}': cannot listen there: "
        "address already in use")


def test_a_bad_flag_value_is_one_line_and_exit_78(daemon_with):
    daemon = daemon_with("--metrics", "9108")
    code, err = daemon.wait()
    assert code == EX_CONFIG
    assert err.strip() == ("stylecastd: error: key 'metrics.listen' = '9108': expected HOST:PORT "
                           "with a port from 0 to 65535, e.g. '127.0.0.1:9108' ('' turns metrics "
                           "off)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
