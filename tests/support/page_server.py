"""Talking to the HTTP server of a running `stylecast-sub --http`: where it serves, and plain
HTTP requests to it."""

from __future__ import annotations

import http.client
import json
import select
import subprocess

WAIT_S = 90.0  # generous: a shared 2-core machine, where imports alone can take 30 s


def serving_url(process: subprocess.Popen) -> tuple[str, int]:
    """The host and port from the `serving http://HOST:PORT/` line stylecast-sub prints."""
    ready, _, _ = select.select([process.stderr], [], [], WAIT_S)
    assert ready, "stylecast-sub never said where it serves"
    line = process.stderr.readline()
    assert line.startswith("serving http://") and line.endswith("/\n"), line
    host, port = line.split("//", 1)[1].rstrip("/\n").rsplit(":", 1)
    return host, int(port)


def get(address: tuple[str, int], path: str,
        headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    return request(address, "GET", path, headers=headers)


def request(address: tuple[str, int], method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection(*address, timeout=WAIT_S)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def post_json(address: tuple[str, int], path: str, document: dict,
              headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """POST `document` as JSON: (HTTP status, the JSON reply)."""
    response, data = request(address, "POST", path, json.dumps(document).encode(),
                             {"Content-Type": "application/json", **(headers or {})})
    return response.status, json.loads(data)
