"""CURVE security end to end: `stylecast-ctl keygen`, key file checks, and real stylecastd
processes whose sockets only let in the clients whose public keys are in the authorized folder.

Consumers here are plain pyzmq SUB/REQ sockets with CURVE options, as docs/protocol.md tells a
consumer in any language to connect.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import tempfile
import time
from pathlib import Path

import pytest
import zmq

from stylecast.core.errors import ConfigError
from stylecast.daemon.config import load_config
from stylecast.daemon.ctl import main as ctl_main
from stylecast.stream import endpoints
from stylecast.stream.security import (
    CurveServer,
    ServerKeys,
    check_authorized_dir,
    is_exposed,
    load_public_key,
    load_secret_key,
    write_key_pair,
)

from support.daemon_process import receive, start_daemon
from support.tiny_models import write_tiny_model

SMALL_TEST_SOURCE = "test://?width=64&height=48&fps=30"
SILENCE_S = 2.0  # how long a refused client must see nothing


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def umask(value: int):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Key pairs for the daemon and two clients; only alice is in the authorized folder."""
    root = tmp_path_factory.mktemp("keys")
    pairs = {name: write_key_pair(root / "pairs", name) for name in ("server", "alice", "mallory")}
    authorized = root / "authorized"
    authorized.mkdir(mode=0o700)
    shutil.copy(pairs["alice"].public_file, authorized / "alice.key")
    return {"root": root, "authorized": authorized, **pairs}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "invert.onnx")


def curve_socket(kind: int, keys: dict, client: str | None) -> zmq.Socket:
    """A plain pyzmq socket; with `client`, a CURVE client of the daemon with that key pair."""
    sock = zmq.Context.instance().socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    if client is not None:
        sock.curve_serverkey = keys["server"].public_key.encode()
        sock.curve_publickey, sock.curve_secretkey = load_secret_key(keys[client].secret_file)
    return sock


def subscriber(endpoint: str, keys: dict, client: str | None) -> zmq.Socket:
    sub = curve_socket(zmq.SUB, keys, client)
    sub.setsockopt(zmq.RCVHWM, 100)
    sub.connect(endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, b"stylized")
    return sub


def count_for(sub: zmq.Socket, seconds: float) -> int:
    """Messages received in `seconds` (draining as they come)."""
    received, deadline = 0, time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if sub.poll(int(left * 1000) + 1):
            sub.recv_multipart()
            received += 1
    return received


def write_security_config(folder: Path, keys: dict, **extra: str) -> Path:
    """A config whose [security] paths are relative to it (tests the path resolution too)."""
    shutil.copytree(keys["root"], folder / "sec")
    lines = ["[security]", 'curve_secret_key = "sec/pairs/server.key_secret"',
             'authorized_keys = "sec/authorized"']
    lines += [f'{key} = "{value}"' for key, value in extra.items()]
    config = folder / "curve.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


# --- keygen ------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_pair_whatever_the_umask(tmp_path, capsys):
    directory = tmp_path / "new" / "keys"
    with umask(0):
        code = ctl_main(["keygen", str(directory)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    public, secret = directory / "stylecast.key", directory / "stylecast.key_secret"
    assert sorted(os.listdir(directory)) == ["stylecast.key", "stylecast.key_secret"]  # no temp
    assert (mode(directory), mode(public), mode(secret)) == (0o700, 0o644, 0o600)
    public_key, secret_key = load_secret_key(secret)
    assert load_public_key(public) == public_key and secret_key and len(public_key) == 40
    assert out.splitlines() == [f"public key file: {public}", f"secret key file: {secret}",
                                f"public key: {public_key.decode()}"]
    assert "secret-key" not in public.read_text()


def test_keygen_refuses_to_overwrite_and_force_replaces(tmp_path, capsys):
    first = write_key_pair(tmp_path, "cam")
    before = first.secret_file.read_bytes()
    code = ctl_main(["keygen", str(tmp_path), "--name", "cam"])
    err = capsys.readouterr().err
    assert code == 78 and len(err.strip().splitlines()) == 1
    assert str(first.public_file) in err and str(first.secret_file) in err and "--force" in err
    assert first.secret_file.read_bytes() == before

    first.secret_file.chmod(0o644)  # --force replaces the file, not just its contents
    assert ctl_main(["keygen", str(tmp_path), "--name", "cam", "--force"]) == 0
    capsys.readouterr()
    assert first.secret_file.read_bytes() != before
    assert (mode(first.public_file), mode(first.secret_file)) == (0o644, 0o600)
    assert load_public_key(first.public_file) == load_secret_key(first.secret_file)[0]
    assert sorted(os.listdir(tmp_path)) == ["cam.key", "cam.key_secret"]


def test_keygen_refuses_a_bad_name(tmp_path, capsys):
    assert ctl_main(["keygen", str(tmp_path), "--name", "../evil"]) == 78
    assert "key name '../evil'" in capsys.readouterr().err and not os.listdir(tmp_path)


# --- key files ---------------------------------------------------------------------------------


def test_secret_key_file_problems_are_one_line_naming_the_file(tmp_path):
    pair = write_key_pair(tmp_path, "server")
    with pytest.raises(ConfigError, match=r"not found .*stylecast-ctl keygen"):
        load_secret_key(tmp_path / "missing.key_secret")
    with pytest.raises(ConfigError, match=f"^secret key file {pair.public_file} holds only a "
                       "public key"):
        pair.public_file.chmod(0o600)
        load_secret_key(pair.public_file)
    garbage = tmp_path / "garbage.key_secret"
    garbage.write_text('public-key = "too short"\nsecret-key = "x"\n')
    garbage.chmod(0o600)
    with pytest.raises(ConfigError, match=f"^secret key file {garbage} is not a ZeroMQ CURVE"):
        load_secret_key(garbage)

    pair.secret_file.chmod(0o644)
    with pytest.raises(ConfigError) as readable:
        load_secret_key(pair.secret_file)
    assert str(readable.value) == (f"secret key {pair.secret_file} is readable by others "
                                   f"(mode 0644): chmod 600 {pair.secret_file}")
    pair.secret_file.chmod(0o640)  # group-readable is readable by others too
    with pytest.raises(ConfigError, match=r"\(mode 0640\)"):
        load_secret_key(pair.secret_file)


def test_authorized_folder_checks(tmp_path):
    with pytest.raises(ConfigError, match=r"authorized_keys folder .* not found"):
        check_authorized_dir(tmp_path / "nope")
    folder = tmp_path / "authorized"
    folder.mkdir(mode=0o755)
    assert check_authorized_dir(folder) == []
    key = write_key_pair(tmp_path, "client").public_file
    shutil.copy(key, folder / "client.key")
    (folder / "notes.txt").write_text("not a key file: ignored")
    assert check_authorized_dir(folder) == [folder / "client.key"]
    with pytest.raises(ConfigError, match="is not a folder"):
        check_authorized_dir(folder / "client.key")
    (folder / "broken.key").write_text("hello\n")
    with pytest.raises(ConfigError, match=f"public key file {folder / 'broken.key'} is not a"):
        check_authorized_dir(folder)
    (folder / "broken.key").unlink()
    folder.chmod(0o777)
    with pytest.raises(ConfigError, match=r"writable by others \(mode 0777\): chmod o-w"):
        check_authorized_dir(folder)


def test_security_config_paths_are_relative_to_the_config_file(tmp_path):
    path = tmp_path / "etc" / "stylecast.toml"
    path.parent.mkdir()
    path.write_text("[security]\ncurve_secret_key = 'keys/d.key_secret'\n"
                    "authorized_keys = '/abs/clients'\n")
    security = load_config(path).security
    assert security.curve_secret_key == tmp_path / "etc" / "keys" / "d.key_secret"
    assert security.authorized_keys == Path("/abs/clients")
    assert load_config(None).security.curve_secret_key is None


@pytest.mark.parametrize("toml, named", [
    ("curve_secret_key = 'a.key_secret'\n", "authorized_keys is not"),
    ("authorized_keys = 'clients'\n", "curve_secret_key is not"),
    ("curve = true\n", "security.curve"),
])
def test_security_config_mistakes(tmp_path, toml, named):
    path = tmp_path / "c.toml"
    path.write_text("[security]\n" + toml)
    with pytest.raises(ConfigError, match=named):
        load_config(path)


@pytest.mark.parametrize("endpoint, exposed", [
    ("tcp://127.0.0.1:5555", False), ("tcp://[::1]:5555", False), ("tcp://127.0.0.2:1", False),
    ("tcp://localhost:1", False), ("ipc:///run/stylecast/frames", False), ("inproc://x", False),
    ("tcp://0.0.0.0:5555", True), ("tcp://*:5555", True), ("tcp://192.168.1.9:5555", True),
    ("tcp://[::]:5555", True), ("tcp://eth0:5555", True),
])
def test_which_endpoints_are_exposed(endpoint, exposed):
    assert is_exposed(endpoint) is exposed


def test_curve_server_restarts_in_the_same_context_and_leaves_plain_sockets_alone(tmp_path):
    """A reload with new keys replaces the authenticator: the context's ZAP endpoint is released
    asynchronously, so the next one must wait for it. A socket without CURVE (the ipc control
    socket) keeps working while an authenticator runs."""
    pair = write_key_pair(tmp_path, "server")
    folder = tmp_path / "authorized"
    folder.mkdir()
    keys = ServerKeys(*load_secret_key(pair.secret_file))
    context = zmq.Context()
    try:
        for _ in range(3):
            server = CurveServer(context, keys, folder)
            rep, req = context.socket(zmq.REP), context.socket(zmq.REQ)
            port = rep.bind_to_random_port("tcp://127.0.0.1")
            req.connect(f"tcp://127.0.0.1:{port}")
            req.send(b"ping")
            assert rep.poll(10_000) and rep.recv() == b"ping"
            rep.close(linger=0)
            req.close(linger=0)
            server.close()
    finally:
        context.destroy(linger=0)


# --- ipc socket permissions --------------------------------------------------------------------


def test_ipc_socket_is_0660_in_a_0750_folder_whatever_the_umask(folder):
    sock = zmq.Context.instance().socket(zmq.REP)
    try:
        with umask(0):
            bound = endpoints.bind(sock, f"ipc://{folder}/run/sc/control", "control endpoint")
        path = folder / "run" / "sc" / "control"
        assert bound == f"ipc://{path}"
        assert stat.S_ISSOCK(path.stat().st_mode) and mode(path) == 0o660
        assert mode(path.parent) == 0o750
    finally:
        sock.close(linger=0)
    assert mode(folder) == 0o700  # an existing folder keeps its mode


# --- the daemon --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curve_daemon(keys, model):
    """One stylecastd with CURVE on tcp loopback for both frames and control."""
    folder = Path(tempfile.mkdtemp(prefix="sc-", dir="/tmp"))
    config = write_security_config(folder, keys)
    publish = f"tcp://127.0.0.1:{free_tcp_port()}"
    control = f"tcp://127.0.0.1:{free_tcp_port()}"
    daemon = start_daemon(folder / "d", "--config", str(config), "--model", str(model),
                          "--source", SMALL_TEST_SOURCE, "--control", control, publish=publish)
    daemon.control = control
    try:
        daemon.notify.wait_for("READY=1")
        yield daemon
    finally:
        daemon.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_only_authorized_curve_clients_get_frames(curve_daemon, keys):
    alice = subscriber(curve_daemon.publish, keys, "alice")
    mallory = subscriber(curve_daemon.publish, keys, "mallory")  # valid keys, not authorized
    plain = subscriber(curve_daemon.publish, keys, None)  # no CURVE at all
    try:
        topic, header, payload = receive(alice)
        assert topic == b"stylized" and header["v"] == 1
        assert len(payload) == header["width"] * header["height"] * 3
        # While alice keeps receiving, the other two see nothing at all.
        assert count_for(alice, SILENCE_S) > 0
        assert not mallory.poll(0) and not plain.poll(0)
    finally:
        for sub in (alice, mallory, plain):
            sub.close(linger=0)
    assert curve_daemon.process.poll() is None


def test_ctl_over_curve_tcp_control(curve_daemon, keys, capsys):
    with_keys = ["--endpoint", curve_daemon.control, "--timeout", "20", "--server-key",
                 str(keys["server"].public_file), "--client-key", str(keys["alice"].secret_file)]
    code, out = ctl_main([*with_keys, "status", "--json"]), capsys.readouterr().out
    assert code == 0 and json.loads(out)["style"] == "invert"

    for refused in (["--timeout", "1"],  # no keys
                    ["--timeout", "1", "--server-key", str(keys["server"].public_file),
                     "--client-key", str(keys["mallory"].secret_file)]):  # not authorized
        code = ctl_main(["--endpoint", curve_daemon.control, *refused, "status"])
        assert code == 1 and "no reply" in capsys.readouterr().err

    with pytest.raises(SystemExit) as usage:
        ctl_main(["--endpoint", curve_daemon.control, "--server-key", "x.key", "status"])
    assert usage.value.code == 2


def start_ready_curve_daemon(folder: Path, keys: dict, model: Path):
    """(daemon, publish endpoint): a stylecastd with CURVE on a free loopback port, READY."""
    config = write_security_config(folder, keys)
    publish = f"tcp://127.0.0.1:{free_tcp_port()}"
    daemon = start_daemon(folder / "d", "--config", str(config), "--model", str(model),
                          "--source", SMALL_TEST_SOURCE, publish=publish)
    try:
        daemon.notify.wait_for("READY=1")
    except BaseException:
        daemon.close()
        raise
    return daemon, publish


def test_sighup_rereads_the_authorized_keys(folder, keys, model):
    daemon, publish = start_ready_curve_daemon(folder, keys, model)
    subs = []
    try:
        subs.append(alice := subscriber(publish, keys, "alice"))
        receive(alice)
        subs.append(refused := subscriber(publish, keys, "mallory"))
        assert not refused.poll(500)

        shutil.copy(keys["mallory"].public_file, folder / "sec" / "authorized" / "mallory.key")
        daemon.signal(signal.SIGHUP)
        daemon.notify.wait_for("RELOADING=1")
        subs.append(mallory := subscriber(publish, keys, "mallory"))
        assert receive(mallory)[0] == b"stylized"
        assert receive(alice)[0] == b"stylized"
        daemon.signal(signal.SIGTERM)
        code, err = daemon.wait()
        assert code == 0, err
        assert "2 authorized client key file(s)" in err
    finally:
        for sub in subs:
            sub.close(linger=0)
        daemon.close()


def test_sighup_with_a_new_server_key_rebinds_with_it(folder, keys, model):
    daemon, publish = start_ready_curve_daemon(folder, keys, model)
    subs = []
    try:
        subs.append(old := subscriber(publish, keys, "alice"))
        receive(old)

        renewed = write_key_pair(folder / "sec" / "pairs", "server", force=True)
        daemon.signal(signal.SIGHUP)
        daemon.notify.wait_for("RELOADING=1")
        new_keys = {**keys, "server": renewed}
        subs.append(new := subscriber(publish, new_keys, "alice"))
        assert receive(new)[0] == b"stylized"
        count_for(old, 0.5)  # what it had queued from before the reload
        assert count_for(old, 1.0) == 0, "a client of the old server key still gets frames"
        assert daemon.process.poll() is None
    finally:
        for sub in subs:
            sub.close(linger=0)
        daemon.close()


@pytest.mark.parametrize("problem", ["world-readable", "no authorized_keys", "no folder"])
def test_bad_security_files_exit_78_with_one_line(folder, keys, model, problem):
    config = write_security_config(folder, keys)
    secret = folder / "sec" / "pairs" / "server.key_secret"
    if problem == "world-readable":
        secret.chmod(0o644)
        named = [f"secret key {secret} is readable by others (mode 0644): chmod 600 {secret}"]
    elif problem == "no authorized_keys":
        config.write_text(f'[security]\ncurve_secret_key = "{secret}"\n')
        named = ["security", "authorized_keys is not"]
    else:
        shutil.rmtree(folder / "sec" / "authorized")
        named = [f"authorized_keys folder {folder / 'sec' / 'authorized'} not found"]
    daemon = start_daemon(folder / "d", "--config", str(config), "--model", str(model),
                          "--source", SMALL_TEST_SOURCE)
    try:
        code, err = daemon.wait()
    finally:
        daemon.close()
    lines = err.strip().splitlines()
    assert code == 78, err
    assert len(lines) == 1 and lines[0].startswith("stylecastd: error:")
    assert all(part in lines[0] for part in named), lines[0]


def test_exposed_endpoint_without_curve_warns_and_ipc_sockets_are_0660(folder, model):
    port = free_tcp_port("0.0.0.0")
    frames, control = folder / "pub" / "frames", folder / "ctl" / "control"
    daemon = start_daemon(folder / "d", "--model", str(model), "--source", SMALL_TEST_SOURCE,
                          "--publish", f"ipc://{frames}", "--control", f"ipc://{control}",
                          publish=f"tcp://0.0.0.0:{port}")
    try:
        daemon.notify.wait_for("READY=1")
        for path in (frames, control):
            assert stat.S_ISSOCK(path.stat().st_mode) and mode(path) == 0o660
            assert mode(path.parent) == 0o750
        daemon.signal(signal.SIGTERM)
        code, err = daemon.wait()
    finally:
        daemon.close()
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, err
    assert f"tcp://0.0.0.0:{port}" in warnings[0] and "without CURVE" in warnings[0]
