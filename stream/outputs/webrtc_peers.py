"""WebRTC viewers: one aiortc peer connection per browser, answering the offer it POSTs.

Each connection gets its own track (webrtc_media.py): H.264 from the one encoder all H.264
viewers share (webrtc_encoder.py) when the browser offers it, else VP8 that its own sender
encodes from the shared picture; and a data channel that carries, for every frame sent,
its seq and capture wall time, so the page can tell how old a frame is when it shows it. No
STUN or TURN server: viewers reach the host directly.
"""

from __future__ import annotations

import contextvars
import json
import logging
from typing import Any

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidStateError, OperationError

from stylecast.stream.outputs.webrtc_encoder import SharedEncoder
from stylecast.stream.outputs.webrtc_media import EncodedTrack, SharedPicture, ViewerTrack

log = logging.getLogger(__name__)

CODEC_ORDER = ("video/H264", "video/VP8", "video/rtx")  # H.264 first: browsers decode it in
# hardware more often; rtx lets a viewer ask for lost packets again
CHANNEL_ID = 0  # the data channel is negotiated out of band: the page opens the same id

# Where aioice gathers host candidates for the connection being answered: None is its own
# choice (every interface but loopback). A page served on one address (loopback by default)
# gets media on that address only, which also makes a machine with no other interface work.
_ICE_ADDRESSES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "stylecast_ice_addresses", default=None)
_aioice_host_addresses = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _ICE_ADDRESSES.get()
    if chosen is None:
        return _aioice_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return list(chosen)


aioice.ice.get_host_addresses = _host_addresses


class BadOffer(ValueError):
    """An offer that cannot be answered; the message says why, for an HTTP 400."""


class Viewers:
    """The peer connections of all viewers, answered and closed on one event loop."""

    def __init__(self, picture: SharedPicture, encoder: SharedEncoder,
                 ice_addresses: list[str] | None) -> None:
        self.picture = picture
        self.encoder = encoder
        self.ice_addresses = ice_addresses
        self.served = 0  # connections that reached "connected"
        self._connections: set[RTCPeerConnection] = set()

    @property
    def count(self) -> int:
        return len(self._connections)

    async def answer(self, offer: dict[str, Any]) -> dict[str, str]:
        """The answer to a browser's offer ({"sdp", "type": "offer"}); BadOffer if unusable."""
        description = _offer(offer)
        connection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._connections.add(connection)
        connection.on("connectionstatechange", lambda: self._state_changed(connection))
        try:
            await self._negotiate(connection, description)
        except BaseException:
            await self._drop(connection)
            raise
        local = connection.localDescription
        return {"sdp": local.sdp, "type": local.type}

    async def _negotiate(self, connection: RTCPeerConnection,
                         offer: RTCSessionDescription) -> None:
        channel = connection.createDataChannel("frames", negotiated=True, id=CHANNEL_ID,
                                               ordered=False, maxRetransmits=0)

        def sent(document: dict[str, Any]) -> None:
            _send(channel, document)

        # Made before the offer is read, so that the offer's video section takes this
        # transceiver, and its codec preferences, for the answer.
        transceiver = connection.addTransceiver(ViewerTrack(self.picture, sent),
                                                direction="sendonly")
        transceiver.setCodecPreferences(preferred_codecs())
        try:
            await connection.setRemoteDescription(offer)
        except (ValueError, InternalError, InvalidStateError, OperationError) as err:
            raise BadOffer(f"the offer cannot be used: {err}") from None
        if not any(t.kind == "video" and t.mid is not None for t in connection.getTransceivers()):
            raise BadOffer("the offer has no video that this server can send (H.264 or VP8)")
        token = _ICE_ADDRESSES.set(self.ice_addresses)
        try:
            await connection.setLocalDescription(await connection.createAnswer())
        finally:
            _ICE_ADDRESSES.reset(token)
        # The codec is known only now; the RTP sender first asks its track for media once the
        # connection is up.
        if answered_codec(connection.localDescription.sdp) == "video/H264":
            transceiver.sender.replaceTrack(EncodedTrack(self.encoder, sent))

    async def _state_changed(self, connection: RTCPeerConnection) -> None:
        state = connection.connectionState
        log.debug("webrtc viewer: %s", state)
        if state == "connected":
            self.served += 1
        elif state in ("failed", "closed") and connection in self._connections:
            await self._drop(connection)

    async def _drop(self, connection: RTCPeerConnection) -> None:
        self._connections.discard(connection)
        senders = connection.getSenders()
        await connection.close()
        for sender in senders:
            if sender.track is not None:
                sender.track.stop()  # an EncodedTrack leaves the shared encoder

    async def close(self) -> None:
        for connection in list(self._connections):
            await self._drop(connection)


def preferred_codecs() -> list[Any]:
    codecs = RTCRtpSender.getCapabilities("video").codecs
    return [codec for mime in CODEC_ORDER for codec in codecs if codec.mimeType == mime]


def answered_codec(sdp: str) -> str | None:
    """The first codec of the answer's video section: the one this server sends."""
    lines = sdp.splitlines()
    video = next((line.split() for line in lines if line.startswith("m=video")), None)
    if video is None or len(video) < 4:
        return None
    rtpmap = next((line for line in lines if line.startswith(f"a=rtpmap:{video[3]} ")), "")
    return "video/" + rtpmap.split()[1].split("/")[0] if rtpmap else None


def _offer(offer: dict[str, Any]) -> RTCSessionDescription:
    sdp, kind = offer.get("sdp"), offer.get("type")
    if kind != "offer" or not isinstance(sdp, str):
        raise BadOffer('expected {"sdp": "...", "type": "offer"}')
    return RTCSessionDescription(sdp=sdp, type=kind)


def _send(channel: RTCDataChannel, document: dict[str, Any]) -> None:
    if channel.readyState == "open":
        channel.send(json.dumps(document, separators=(",", ":")))
