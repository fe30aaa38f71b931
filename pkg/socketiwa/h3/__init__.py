"""HTTP/3 for socketiwa, on aioquic's ``H3Connection``: an ASGI server, a client, Extended
CONNECT (RFC 9220), HTTP datagrams (RFC 9297), WebTransport (draft-02, as Chromium speaks it),
WebSocket over HTTP/3 (RFC 9220), session tickets and 0-RTT. Runs on CPython and in Pyodide
(Node, the IWA).

Modules: server.py (ASGI), client.py, webtransport.py, websocket.py (needs wsproto),
tickets.py, certificates.py (self-signed certificates Chromium accepts by pinning), echo.py
(a WebTransport echo application), _protocol.py (the connection and its streams, flow control).

    from socketiwa import h3
    server = await h3.serve("127.0.0.1", 4433, app=asgi_app,
                            configuration=h3.server_configuration(cert_pem, key_pem))
    async with h3.connect("127.0.0.1", server.port,
                          configuration=h3.client_configuration(cadata=ca_pem)) as client:
        response = await client.get("/")
"""
from __future__ import annotations

from typing import Any

from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration

from .. import quic
from ._protocol import (CapsuleParser, ConnectionTerminatedError, H3Protocol, RequestStream,
                        StreamResetError, encode_capsule, header_value)
from .certificates import SelfSignedCertificate, self_signed_certificate
from .client import H3ClientProtocol, Response, connect
from .server import H3Server, H3ServerProtocol, serve
from .tickets import ClientTicketStore, ServerTicketStore
from .webtransport import WebTransportSession, WebTransportStream

# QUIC DATAGRAM frames (RFC 9221) up to this size: needed for HTTP datagrams and WebTransport.
MAX_DATAGRAM_FRAME_SIZE = 65536


def server_configuration(certificate: bytes | str, private_key: bytes | str, *, datagrams: bool = True,
                         **kwargs: Any) -> QuicConfiguration:
    """quic.server_configuration for HTTP/3 (ALPN h3; QUIC datagrams on unless ``datagrams``
    is False, which also turns off WebTransport and HTTP datagrams)."""
    if datagrams:
        kwargs.setdefault("max_datagram_frame_size", MAX_DATAGRAM_FRAME_SIZE)
    return quic.server_configuration(certificate, private_key, alpn=H3_ALPN[0], **kwargs)


def client_configuration(*, datagrams: bool = True, **kwargs: Any) -> QuicConfiguration:
    """quic.client_configuration for HTTP/3 (see server_configuration)."""
    if datagrams:
        kwargs.setdefault("max_datagram_frame_size", MAX_DATAGRAM_FRAME_SIZE)
    return quic.client_configuration(alpn=H3_ALPN[0], **kwargs)


__all__ = ["serve", "connect", "server_configuration", "client_configuration", "H3Server",
           "H3ServerProtocol", "H3ClientProtocol", "H3Protocol", "Response", "RequestStream",
           "StreamResetError", "ConnectionTerminatedError", "CapsuleParser", "encode_capsule",
           "header_value", "MAX_DATAGRAM_FRAME_SIZE", "WebTransportSession", "WebTransportStream", "ClientTicketStore",
           "ServerTicketStore", "SelfSignedCertificate", "self_signed_certificate"]
