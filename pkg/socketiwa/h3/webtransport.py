"""WebTransport over HTTP/3, draft-02 as Chromium speaks it (``sec-webtransport-http3-draft02``,
SETTINGS_ENABLE_WEBTRANSPORT, H3_DATAGRAM; unknown capsules such as Chromium's grease ones are
ignored). Server and client share one session object.

Server::

    async def on_session(session):           # one call per CONNECT :protocol=webtransport
        if session.path != "/echo":
            return await session.reject(404)
        await session.accept()
        stream = await session.accept_bidirectional_stream()
        await stream.write(await stream.read_all(), end=True)
        print(await session.wait_closed())   # (code, reason) of whoever closed it

    await h3.serve(host, port, configuration=..., webtransport=on_session)

Client::

    async with h3.connect(...) as client:
        session = await client.webtransport("/echo")
        session.send_datagram(b"hi"); await session.receive_datagram()
        stream = await session.create_bidirectional_stream()
        await session.close(4000, "bye")

The session ends when the handler returns (closed with code 0 if still open). Stream error
codes are WebTransport application codes, mapped into the HTTP/3 error space as Chromium does.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Awaitable, Callable

from aioquic.quic.connection import stream_is_unidirectional

from ..errors import ConnectError, InvalidOptionError, SocketClosedError
from ._protocol import (CAPSULE_DATAGRAM, CapsuleParser, ConnectionTerminatedError, H3Protocol,
                        Headers, RequestStream, StreamResetError, _BoundedQueue, _ReceiveBuffer,
                        encode_capsule, header_value, normalize_headers, HeadersIn)

if TYPE_CHECKING:
    from .client import H3ClientProtocol

logger = logging.getLogger("socketiwa.h3.webtransport")

CLOSE_WEBTRANSPORT_SESSION = 0x2843
DRAIN_WEBTRANSPORT_SESSION = 0x78AE
WEBTRANSPORT_SESSION_GONE = 0x170D7B68
MAX_CLOSE_REASON = 1024
MAX_PENDING_STREAMS = 256  # accepted by QUIC but not yet taken by the application, per kind

# WebTransport application error codes live in a reserved range of HTTP/3 error codes, skipping
# the GREASE code points (every 0x1f-th).
_WT_CODE_FIRST = 0x52E4A40FA8DB
_WT_CODE_LAST = 0x52E5AC983162


def code_to_http3(code: int) -> int:
    """The HTTP/3 error code carrying WebTransport application error ``code`` (0..2**32-1)."""
    if not 0 <= code <= 0xFFFFFFFF:
        raise InvalidOptionError(f"WebTransport error code out of range: {code}")
    return _WT_CODE_FIRST + code + code // 0x1E


def code_from_http3(http_code: int) -> int | None:
    """The application code carried by an HTTP/3 error code, or None if it carries none."""
    if not _WT_CODE_FIRST <= http_code <= _WT_CODE_LAST:
        return None
    shifted = http_code - _WT_CODE_FIRST
    if shifted % 0x1F == 0x1E:
        return None
    return shifted - shifted // 0x1F


# A server's session handler: ``async def on_session(session)`` (see the module docstring).
WebTransportHandler = Callable[["WebTransportSession"], Awaitable[None]]


class WebTransportStream:
    """A WebTransport stream: bidirectional, or one direction of a unidirectional one."""

    def __init__(self, session: "WebTransportSession", stream_id: int, *, readable: bool, writable: bool):
        self.session = session
        self.stream_id = stream_id
        self.readable = readable
        self.writable = writable
        self._buffer = _ReceiveBuffer()
        if not readable:
            self._buffer.ended = True
        self.write_ended = not writable
        self.reset_code: int | None = None   # HTTP/3 codes as received
        self.stop_code: int | None = None

    @property
    def is_unidirectional(self) -> bool:
        """Whether this is a unidirectional stream."""
        return stream_is_unidirectional(self.stream_id)

    @property
    def unconsumed(self) -> int:
        """Bytes received on this stream and not yet read by the application."""
        return self._buffer.size

    def _received(self, data: bytes, ended: bool) -> None:
        self._buffer.push(data, ended)

    def _failed(self, exc: BaseException) -> None:
        self._buffer.fail(exc)
        self._maybe_forget()

    def _maybe_forget(self) -> None:
        if (self._buffer.ended or self._buffer.error is not None) and self.write_ended:
            protocol = self.session.protocol
            protocol.wt_streams.pop(self.stream_id, None)
            if protocol.http is not None:  # aioquic keeps per-stream parser state; drop it
                protocol.http._stream.pop(self.stream_id, None)

    @property
    def application_reset_code(self) -> int | None:
        """The peer's WebTransport code from RESET_STREAM, if it carried one."""
        return code_from_http3(self.reset_code) if self.reset_code is not None else None

    async def read(self, max_bytes: int = -1) -> bytes:
        """Next data; b"" at the end. StreamResetError if the peer reset the stream (its
        ``code`` is the WebTransport application code when it carried one)."""
        try:
            data = await self._buffer.read(max_bytes)
        except StreamResetError as exc:
            app = code_from_http3(exc.code)
            raise StreamResetError(str(exc), app if app is not None else exc.code) from None
        if data:
            self.session.protocol._consumed(self.stream_id)
        else:
            self._maybe_forget()
        return data

    async def read_all(self, limit: int = 64 * 1024 * 1024) -> bytes:
        """Everything until the peer ends the stream; MessageTooLargeError beyond ``limit``."""
        out = bytearray()
        while chunk := await self.read():
            out += chunk
            if len(out) > limit:
                from ..errors import MessageTooLargeError
                raise MessageTooLargeError(f"stream data larger than {limit} bytes")
        return bytes(out)

    async def write(self, data: bytes, end: bool = False) -> None:
        """Send data (``end``: then FIN). Waits while too much is unacknowledged."""
        if self.write_ended:
            raise SocketClosedError(f"WebTransport stream {self.stream_id} is closed for writing")
        if self.stop_code is not None:
            raise StreamResetError(f"peer stopped stream {self.stream_id}",
                                   code_from_http3(self.stop_code) or self.stop_code)
        protocol = self.session.protocol
        protocol._check_open()
        protocol._quic.send_stream_data(self.stream_id, bytes(data), end_stream=end)
        self.write_ended = end
        protocol._transmit_soon()
        await protocol.drain(self.stream_id)
        if end:
            self._maybe_forget()

    async def close(self) -> None:
        """End our direction (FIN)."""
        if not self.write_ended:
            await self.write(b"", end=True)

    def reset(self, code: int = 0) -> None:
        """Abort our direction with a WebTransport application code."""
        if not self.write_ended:
            self.write_ended = True
            try:
                self.session.protocol._quic.reset_stream(self.stream_id, code_to_http3(code))
            except Exception:
                pass
            self.session.protocol._transmit_soon()
        self._maybe_forget()

    def stop_sending(self, code: int = 0) -> None:
        """Ask the peer to stop sending (its direction), with a WebTransport application code."""
        if not self._buffer.ended:
            try:
                self.session.protocol._quic.stop_stream(self.stream_id, code_to_http3(code))
            except Exception:
                pass
            self._buffer.ended = True
            self._buffer.chunks.clear()
            self._buffer.size = 0
            self._buffer.wake()
            self.session.protocol._transmit_soon()
        self._maybe_forget()


class _StreamQueue(_BoundedQueue[WebTransportStream]):
    """Incoming streams not yet accepted by the application (at most MAX_PENDING_STREAMS)."""

    def __init__(self) -> None:
        super().__init__(MAX_PENDING_STREAMS)


class WebTransportSession:
    """One WebTransport session (its CONNECT stream is ``stream``)."""

    def __init__(self, protocol: H3Protocol, stream: RequestStream, request_headers: Headers):
        self.protocol = protocol
        self.stream = stream
        self.session_id = stream.stream_id
        self.request_headers = request_headers
        self.path = header_value(request_headers, ":path") or "/"
        self.origin = header_value(request_headers, "origin")
        self.accepted = False
        self.close_info: tuple[int, str] | None = None   # set once the session is over
        self.closed_by_peer = False
        self._closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self.response_headers: Headers | None = None   # client: the server's answer to the CONNECT
        self._incoming_bidi = _StreamQueue()
        self._incoming_uni = _StreamQueue()
        self._capsules = CapsuleParser(max_capsule=65536)
        self.ignored_capsules: list[int] = []   # types of unknown capsules seen (e.g. grease)
        stream.on_data = self._session_stream_data
        protocol.wt_sessions[self.session_id] = self
        if stream._body.chunks or stream._body.ended:  # data that came with the headers
            data = b"".join(stream._body.chunks)
            stream._body.chunks.clear()
            stream._body.size = 0
            self._session_stream_data(data, stream._body.ended)

    @property
    def is_client(self) -> bool:
        """Whether this end opened the session."""
        return bool(self.protocol._quic.configuration.is_client)

    # ------------------------------------------------------------ server side: the decision
    async def accept(self, headers: HeadersIn = None) -> None:
        """Server: accept the session (200), with extra response ``headers``."""
        if self.is_client or self.accepted:
            raise InvalidOptionError("accept() is for a server's new session, once")
        self.accepted = True
        response = [(b":status", b"200")]
        if header_value(self.request_headers, "sec-webtransport-http3-draft02") is not None:
            response.append((b"sec-webtransport-http3-draft", b"draft02"))
        await self.stream.send_headers(response + normalize_headers(headers))

    async def reject(self, status: int = 404, headers: HeadersIn = None) -> None:
        """Server: refuse the session with ``status``; it is over at once."""
        if self.is_client or self.accepted:
            raise InvalidOptionError("reject() is for a server's new session, before accept()")
        await self.stream.send_headers([(b":status", str(status).encode())] + normalize_headers(headers),
                                       end_stream=True)
        self._finish((0, f"rejected with status {status}"), by_peer=False)

    # ------------------------------------------------------------ datagrams
    def send_datagram(self, data: bytes) -> None:
        """MessageTooLargeError when over ``max_datagram_size`` (nothing is sent)."""
        self._check_open()
        self.stream.send_datagram(data)

    async def receive_datagram(self) -> bytes:
        """The next datagram of the session (a bounded queue; see ``datagrams_dropped``)."""
        return await self.stream.receive_datagram()

    @property
    def max_datagram_size(self) -> int:
        """The largest datagram payload that fits one QUIC packet."""
        return self.stream.max_datagram_size

    @property
    def datagrams_dropped(self) -> int:
        """Datagrams dropped because the queue was full."""
        return self.stream.datagrams_dropped

    # ------------------------------------------------------------ streams
    def _check_open(self) -> None:
        if self.close_info is not None:
            raise SocketClosedError(f"WebTransport session closed {self.close_info}")
        self.protocol._check_open()

    async def create_bidirectional_stream(self) -> WebTransportStream:
        """Open a bidirectional stream in this session."""
        return self._create_stream(unidirectional=False)

    async def create_unidirectional_stream(self) -> WebTransportStream:
        """Open a unidirectional (send-only) stream in this session."""
        return self._create_stream(unidirectional=True)

    def _create_stream(self, unidirectional: bool) -> WebTransportStream:
        self._check_open()
        stream_id = self.protocol.h3.create_webtransport_stream(self.session_id,
                                                                  is_unidirectional=unidirectional)
        stream = WebTransportStream(self, stream_id, readable=not unidirectional, writable=True)
        # Replies on a bidirectional stream we opened carry no header: they bypass aioquic's
        # HTTP/3 parser (see H3Protocol.quic_event_received).
        self.protocol.wt_streams[stream_id] = stream
        self.protocol._transmit_soon()
        return stream

    async def accept_bidirectional_stream(self) -> WebTransportStream:
        """The next bidirectional stream the peer opened (waits for one)."""
        return await self._incoming_bidi.get()

    async def accept_unidirectional_stream(self) -> WebTransportStream:
        """The next unidirectional stream the peer opened (waits for one)."""
        return await self._incoming_uni.get()

    def _stream_data(self, stream_id: int, data: bytes, ended: bool) -> None:
        """A peer-opened stream's first data (the protocol routes the rest directly)."""
        protocol = self.protocol
        stream = protocol.wt_streams.get(stream_id)
        if stream is None:
            if self.close_info is not None:
                protocol._refuse_stream(stream_id)
                return
            uni = stream_is_unidirectional(stream_id)
            stream = WebTransportStream(self, stream_id, readable=True, writable=not uni)
            queue = self._incoming_uni if uni else self._incoming_bidi
            if not queue.push(stream):
                protocol._refuse_stream(stream_id)  # the application is not taking streams
                return
            protocol.wt_streams[stream_id] = stream
        stream._received(data, ended)

    # ------------------------------------------------------------ close
    def _session_stream_data(self, data: bytes, ended: bool) -> None:
        try:
            capsules = self._capsules.feed(data)
        except Exception as exc:  # a malformed or oversize capsule: end the session
            logger.warning("WebTransport session %d: %s", self.session_id, exc)
            self.stream.reset()
            self._finish((0, f"bad capsule: {exc}"), by_peer=True)
            return
        for ctype, payload in capsules:
            if ctype == CLOSE_WEBTRANSPORT_SESSION and len(payload) >= 4:
                code = int.from_bytes(payload[:4], "big")
                reason = payload[4:].decode("utf-8", "replace")
                self._peer_closed((code, reason))
            elif ctype == DRAIN_WEBTRANSPORT_SESSION:
                pass  # the peer will not open more; nothing to do here
            elif ctype == CAPSULE_DATAGRAM:
                self.stream._datagrams.push(payload)
            else:
                self.ignored_capsules.append(ctype)   # unknown capsules MUST be ignored
        if ended:
            self._peer_closed((0, ""))

    def _peer_closed(self, info: tuple[int, str]) -> None:
        if self.close_info is None:
            self._finish(info, by_peer=True)
        if not self.stream.send_ended:  # answer with our FIN (draft: close cleanly both ways)
            try:
                self.stream.send_ended = True
                self.protocol._quic.send_stream_data(self.session_id, b"", end_stream=True)
                self.protocol._transmit_soon()
            except Exception:
                pass

    def _finish(self, info: tuple[int, str], by_peer: bool) -> None:
        if self.close_info is not None:
            return
        self.close_info = info
        self.closed_by_peer = by_peer
        gone = SocketClosedError(f"WebTransport session closed {info}")
        self._incoming_bidi.fail(gone)
        self._incoming_uni.fail(gone)
        self.stream._datagrams.fail(gone)
        for stream in [s for s in self.protocol.wt_streams.values() if s.session is self]:
            if not stream.write_ended:
                stream.write_ended = True
                try:
                    self.protocol._quic.reset_stream(stream.stream_id, WEBTRANSPORT_SESSION_GONE)
                except Exception:
                    pass
            if not stream._buffer.ended:
                try:
                    self.protocol._quic.stop_stream(stream.stream_id, WEBTRANSPORT_SESSION_GONE)
                except Exception:
                    pass
                stream._failed(StreamResetError("session closed", WEBTRANSPORT_SESSION_GONE))
            self.protocol.wt_streams.pop(stream.stream_id, None)
        self.protocol.wt_sessions.pop(self.session_id, None)
        self.protocol._transmit_soon()
        if not self._closed.done():
            self._closed.set_result(info)
        # No STOP_SENDING on the session stream: Chromium takes it for a lost session instead
        # of reading our close capsule; the peer answers our FIN with its own.
        self.stream.release(stop_sending=False)

    def _connection_lost(self, exc: ConnectionTerminatedError) -> None:
        self._finish((exc.code, exc.reason or "connection closed"), by_peer=True)

    async def close(self, code: int = 0, reason: str = "") -> None:
        """Close with an application code (32 bits) and reason (at most 1024 UTF-8 bytes)."""
        raw = reason.encode()
        if len(raw) > MAX_CLOSE_REASON or not 0 <= code <= 0xFFFFFFFF:
            raise InvalidOptionError("close code must fit 32 bits and the reason 1024 bytes")
        if self.close_info is not None:
            return
        if not self.stream.send_ended and self.stream.headers_sent:
            capsule = encode_capsule(CLOSE_WEBTRANSPORT_SESSION, code.to_bytes(4, "big") + raw)
            try:
                await self.stream.send_data(capsule, end_stream=True)
            except (StreamResetError, ConnectionTerminatedError):
                pass
        self._finish((code, reason), by_peer=False)

    async def wait_closed(self) -> tuple[int, str]:
        """(code, reason) once the session is over, whoever closed it."""
        return await asyncio.shield(self._closed)


async def serve_session(session: WebTransportSession, handler: WebTransportHandler | None) -> None:
    """Run the server's handler for a new session (created as its CONNECT arrived, so streams
    and datagrams that follow at once find it)."""
    protocol = session.protocol
    if handler is None or not protocol._datagrams_enabled:
        await session.reject(404 if handler is None else 501)
        return
    try:
        await handler(session)
    except (StreamResetError, ConnectionTerminatedError, SocketClosedError):
        pass
    except Exception:
        logger.exception("WebTransport handler failed on %s", session.path)
        if not session.accepted:
            await session.reject(500)
        else:
            await session.close(1, "server error")
        return
    if not session.accepted and session.close_info is None:
        await session.reject(404)
    elif session.close_info is None:
        await session.close(0, "")


async def open_session(protocol: H3ClientProtocol, target: str, *, headers: HeadersIn = None) -> WebTransportSession:
    await protocol.require_extended_connect(webtransport=True)
    stream = protocol.open_stream()
    request = protocol._request_headers("CONNECT", target, headers, "webtransport")
    request.append((b"sec-webtransport-http3-draft02", b"1"))
    session = WebTransportSession(protocol, stream, request)
    await stream.send_headers(request)
    try:
        response = await stream.receive_headers()
    except BaseException:
        session._finish((0, "no response"), by_peer=False)
        raise
    status = int(header_value(response, ":status") or 0)   # aioquic refuses a response without one
    if not 200 <= status < 300:
        session._finish((0, f"refused with status {status}"), by_peer=True)
        raise ConnectError(f"WebTransport session {target} refused with status {status}")
    session.accepted = True
    session.response_headers = response
    return session


__all__ = ["WebTransportSession", "WebTransportStream", "code_to_http3", "code_from_http3",
           "CLOSE_WEBTRANSPORT_SESSION", "WEBTRANSPORT_SESSION_GONE"]
