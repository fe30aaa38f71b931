"""HTTP/3 client: requests with headers, streaming bodies both ways, trailers, many at once on
one connection; Extended CONNECT (RFC 9220) with HTTP datagrams (RFC 9297).

    async with h3.connect("127.0.0.1", 4433, configuration=h3.client_configuration(...)) as client:
        r = await client.request("GET", "/hello")
        print(r.status, r.header("content-type"), await r.read())
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterable, AsyncIterator, Iterable, cast

from aioquic.asyncio import connect as quic_connect
from aioquic.quic.configuration import QuicConfiguration

from .. import aio
from ..errors import ConnectError, InvalidOptionError
from ._protocol import H3Protocol, Headers, HeadersIn, RequestStream, header_value, normalize_headers

if TYPE_CHECKING:
    from .tickets import ClientTicketStore
    from .websocket import WebSocket
    from .webtransport import WebTransportSession

Body = bytes | bytearray | memoryview | Iterable[bytes] | AsyncIterable[bytes] | None


class Response:
    """A response as soon as its headers arrived; the body streams (``read``, ``async for``)."""

    def __init__(self, stream: RequestStream, headers: Headers, sender: asyncio.Task[None] | None):
        self.stream = stream
        self.headers = [(k, v) for k, v in headers if not k.startswith(b":")]
        self.status = int(header_value(headers, ":status") or 0)   # aioquic refuses a response without one
        self._sender = sender

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str | bytes) -> str | None:
        """The first value of response header ``name``, or None."""
        return header_value(self.headers, name)

    @property
    def trailers(self) -> Headers | None:
        """The trailer fields, once the body has been read to its end (None if there were none)."""
        return self.stream.trailers

    async def read(self, limit: int = 64 * 1024 * 1024) -> bytes:
        """The whole remaining body (MessageTooLargeError beyond ``limit``)."""
        try:
            return await self.stream.read_all(limit)
        finally:
            await self._sent()
            self.stream.release()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while chunk := await self.stream.read():
                yield chunk
        finally:
            await self._sent()
            self.stream.release()

    async def _sent(self) -> None:
        """Surface a failure of the request body upload (it runs beside the response)."""
        if self._sender is not None and self._sender.done():
            self._sender.result()

    def close(self) -> None:
        """Abandon the exchange (resets the stream if it is still open)."""
        if self._sender is not None:
            self._sender.cancel()
        if not (self.stream.send_ended and self.stream.receive_ended):
            self.stream.reset()
        self.stream.release()


class H3ClientProtocol(H3Protocol):
    """A client connection (what ``h3.connect`` yields): ``request``, ``get``,
    ``extended_connect``, ``webtransport`` and ``websocket``, many at once."""
    authority: bytes = b"localhost"

    def open_stream(self) -> RequestStream:
        """A new request stream (client-initiated, bidirectional); nothing is sent yet."""
        stream_id = self._quic.get_next_available_stream_id()
        return self.new_stream(stream_id)

    def _request_headers(self, method: str, target: str, headers: HeadersIn, protocol: str | None) -> Headers:
        if "://" in target:  # an absolute URL: take scheme, authority and path from it
            from urllib.parse import urlsplit
            u = urlsplit(target)
            scheme, authority = u.scheme.encode(), u.netloc.encode()
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        else:
            scheme, authority, path = b"https", self.authority, target or "/"
        if not path.startswith("/") and method != "CONNECT":
            raise InvalidOptionError(f"request target must be a path or URL: {target!r}")
        pseudo = [(b":method", method.encode()), (b":scheme", scheme), (b":authority", authority),
                  (b":path", path.encode())]
        if protocol is not None:
            pseudo.append((b":protocol", protocol.encode()))
        return pseudo + normalize_headers(headers)

    async def request(self, method: str, target: str, *, headers: HeadersIn = None, body: Body = None,
                      trailers: HeadersIn = None, protocol: str | None = None) -> Response:
        """Send a request; returns when the response headers arrive. ``body``: bytes, or an
        (async) iterable of bytes streamed while the response may already be arriving.
        ``trailers`` are sent after the body."""
        if protocol is not None:
            await self.require_extended_connect()
        stream = self.open_stream()
        early = self.in_early_data
        request_headers = self._request_headers(method.upper(), target, headers, protocol)
        sender: asyncio.Task[None] | None = None
        streaming = body is not None and not isinstance(body, (bytes, bytearray, memoryview))
        if streaming or protocol is not None:
            await stream.send_headers(request_headers)
            if streaming:
                sender = asyncio.ensure_future(self._stream_body(
                    stream, cast("Iterable[bytes] | AsyncIterable[bytes]", body), trailers))
        else:
            body = bytes(cast("bytes | bytearray | memoryview | None", body) or b"")
            await stream.send_headers(request_headers, end_stream=not body and not trailers)
            if body:
                await stream.send_data(body, end_stream=not trailers)
            if trailers:
                await stream.send_headers(trailers, end_stream=True)
        try:
            response_headers = await stream.receive_headers()
        except BaseException:
            if sender is not None:
                sender.cancel()
            stream.release()
            raise
        response = Response(stream, response_headers, sender)
        if response.status == 425 and early and not streaming:
            # sent as 0-RTT and refused as such (RFC 8470): again once the handshake is done
            response.close()
            await self.wait_connected()
            return await self.request(method, target, headers=headers, body=body,
                                      trailers=trailers, protocol=protocol)
        return response


    async def _stream_body(self, stream: RequestStream, body: Iterable[bytes] | AsyncIterable[bytes],
                           trailers: HeadersIn) -> None:
        if isinstance(body, AsyncIterable):
            async for chunk in body:
                if chunk:
                    await stream.send_data(bytes(chunk))
        else:
            for chunk in body:
                if chunk:
                    await stream.send_data(bytes(chunk))
        if trailers:
            await stream.send_headers(trailers, end_stream=True)
        else:
            await stream.end()

    async def get(self, target: str, **kwargs: Any) -> Response:
        """``request("GET", target, ...)``."""
        return await self.request("GET", target, **kwargs)

    async def extended_connect(self, target: str, protocol: str, *, headers: HeadersIn = None) -> Response:
        """RFC 9220 Extended CONNECT: open a tunnel speaking ``protocol``. Raises ConnectError
        unless the server answers 2xx. The response's ``stream`` carries the tunnel: ``send_data``
        / ``read`` for its bytes, ``send_datagram`` / ``receive_datagram`` for HTTP datagrams."""
        response = await self.request("CONNECT", target, headers=headers, protocol=protocol)
        if not response.ok:
            response.close()
            raise ConnectError(f"{protocol} CONNECT {target} refused with status {response.status}")
        return response

    async def webtransport(self, target: str, *, headers: HeadersIn = None) -> WebTransportSession:
        """Open a WebTransport session (draft-02, as Chromium speaks it)."""
        from .webtransport import open_session
        return await open_session(self, target, headers=headers)

    async def websocket(self, target: str, *, headers: HeadersIn = None, subprotocols: Iterable[str] = (),
                        send_key: bool = False) -> WebSocket:
        """Open a WebSocket over HTTP/3 (RFC 9220)."""
        from .websocket import open_websocket
        return await open_websocket(self, target, headers=headers, subprotocols=subprotocols,
                                    send_key=send_key)


@asynccontextmanager
async def connect(host: str, port: int, *, configuration: QuicConfiguration,
                  tickets: ClientTicketStore | None = None, **kwargs: Any) -> AsyncIterator[H3ClientProtocol]:
    """Connect an HTTP/3 client (aioquic's ``connect`` on socketiwa's transport).

    ``tickets`` (a tickets.ClientTicketStore) keeps the session tickets the server issues and
    resumes with one when it has it; if the ticket allows early data, the connection is yielded
    at once (before the handshake completes) so the first requests travel as 0-RTT. Further
    keyword arguments go to aioquic."""
    aio.install()
    name = configuration.server_name or host
    if tickets is not None:
        key = f"{name}:{port}"
        ticket = tickets.take(key)
        if ticket is not None:
            import dataclasses
            configuration = dataclasses.replace(configuration, session_ticket=ticket)
            if ticket.max_early_data_size:
                kwargs.setdefault("wait_connected", False)
        kwargs["session_ticket_handler"] = tickets.handler_for(key)
    async with quic_connect(host, port, configuration=configuration,
                            create_protocol=H3ClientProtocol, **kwargs) as connected:
        client = cast(H3ClientProtocol, connected)   # create_protocol made it; aioquic types the base class
        client.authority = f"{name}:{port}".encode() if port != 443 else name.encode()
        yield client


__all__ = ["connect", "H3ClientProtocol", "Response", "Body"]
