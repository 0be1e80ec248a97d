"""The WebRTC page's HTTP server: a few lines of HTTP/1.1 on asyncio, on the event loop that
runs the peer connections (aiortc brings no web server with it).

    GET  /        the page (webrtc.html, a static file of this package)
    POST /offer   the browser's SDP offer as JSON {"sdp", "type"}; the reply is the answer

One request per connection. An offer is taken only from the page's own origin, as JSON, and a
loopback server answers only to a loopback Host name (control_proxy.check_caller: a web page
elsewhere must not open connections through the viewer's browser).
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, NamedTuple

from stylecast.stream.outputs.control_proxy import (
    Refused,
    body_length,
    check_caller,
    read_command,
)

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 10.0
ANSWER_TIMEOUT_S = 30.0  # ICE gathering on every interface can take a while
PAGE_PATHS = ("/", "/index.html")

Answerer = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Request(NamedTuple):
    method: str
    path: str
    headers: http.client.HTTPMessage
    body: bytes
    refused: Refused | None = None  # a body this server will not read


class Reply(NamedTuple):
    status: HTTPStatus
    content_type: str
    body: bytes

    @classmethod
    def json(cls, document: dict[str, Any], status: HTTPStatus = HTTPStatus.OK) -> Reply:
        return cls(status, "application/json", json.dumps(document).encode())


class PageServer:
    """Serves `page` and answers offers with `answer` on the bound, listening `sock`."""

    def __init__(self, sock: socket.socket, page: bytes, answer: Answerer, *,
                 loopback: bool) -> None:
        self.sock = sock
        self.page = page
        self.answer = answer
        self.loopback = loopback
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, sock=self.sock)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read(reader), READ_TIMEOUT_S)
            reply = await self._route(request) if request is not None else None
            if reply is not None:
                writer.write(_response(reply))
                await writer.drain()
        except (ConnectionError, asyncio.TimeoutError):
            log.debug("webrtc http: a client went away or sent nothing")
        finally:
            writer.close()

    async def _route(self, request: Request) -> Reply:
        if request.method == "GET" and request.path in PAGE_PATHS:
            return Reply(HTTPStatus.OK, "text/html; charset=utf-8", self.page)
        if request.path != "/offer":
            return Reply.json({"error": "not found"}, HTTPStatus.NOT_FOUND)
        if request.method != "POST":
            return Reply.json({"error": "POST the offer"}, HTTPStatus.METHOD_NOT_ALLOWED)
        try:
            check_caller(request.headers, loopback_server=self.loopback)
            if request.refused is not None:
                raise request.refused
            offer = read_command(request.headers, request.body)
        except Refused as refused:
            return Reply.json({"error": str(refused)}, refused.status)
        try:
            return Reply.json(await asyncio.wait_for(self.answer(offer), ANSWER_TIMEOUT_S))
        except ValueError as err:  # webrtc_peers.BadOffer
            return Reply.json({"error": str(err)}, HTTPStatus.BAD_REQUEST)


async def _read(reader: asyncio.StreamReader) -> Request | None:
    """The request, or None where the client sent something that is not one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    line, _, rest = head.partition(b"\r\n")
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        return None
    headers = http.client.parse_headers(io.BytesIO(rest))
    method, path = parts[0], parts[1].split("?", 1)[0]
    if method != "POST":
        return Request(method, path, headers, b"")
    try:
        return Request(method, path, headers, await reader.readexactly(body_length(headers)))
    except Refused as refused:
        return Request(method, path, headers, b"", refused)
    except asyncio.IncompleteReadError:
        return None


def _response(reply: Reply) -> bytes:
    head = (f"HTTP/1.1 {reply.status.value} {reply.status.phrase}\r\n"
            f"Content-Type: {reply.content_type}\r\nContent-Length: {len(reply.body)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n")
    return head.encode("latin-1") + reply.body
