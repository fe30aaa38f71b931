"""WebSocket over HTTP/3 (RFC 9220): an Extended CONNECT stream with ``:protocol = websocket``
carrying ordinary WebSocket frames, encoded and decoded by wsproto.

Server: an ASGI ``websocket`` scope (see server.py), so ASGI WebSocket endpoints run unchanged.
Both request forms are accepted: RFC 9220's (no ``sec-websocket-key``, as Chromium sends it) and
clients that send the key and expect ``sec-websocket-accept`` (niquests/urllib3-future).

Client::

    ws = await client.websocket("/chat", subprotocols=["chat.v1"])
    await ws.send("hello"); print(await ws.receive())
    await ws.close(1000, "bye")

A background reader per socket answers pings and the close handshake; complete messages wait in
a bounded queue, and when it is full the reader stops reading, so QUIC flow control holds the
peer back.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

try:
    from wsproto.connection import Connection, ConnectionState, ConnectionType
    from wsproto.events import (BytesMessage, CloseConnection, Event, Message, Ping, Pong,
                                TextMessage)
    from wsproto.frame_protocol import CloseReason
    from wsproto.utilities import LocalProtocolError, RemoteProtocolError
except ImportError as exc:  # pragma: no cover - optional dependency
    raise ImportError("WebSocket over HTTP/3 needs wsproto (pip install 'socketiwa[h3]'; in "
                      "Pyodide load the wsproto wheel from the socketiwa distribution)") from exc

from ..errors import ConnectError, InvalidOptionError, MessageTooLargeError, SocketClosedError
from ._protocol import (ConnectionTerminatedError, H3Protocol, Headers, HeadersIn, RequestStream,
                        StreamResetError, header_value, normalize_headers)

if TYPE_CHECKING:
    from .client import H3ClientProtocol
    from .server import ASGIApp, Scope
    from .server import Message as ASGIMessage

logger = logging.getLogger("socketiwa.h3.websocket")

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024
DEFAULT_QUEUE = 64
CLOSE_TIMEOUT = 5.0


def accept_value(key: str | bytes) -> bytes:
    """sec-websocket-accept for a sec-websocket-key (RFC 6455 section 4.2.2)."""
    key = key.encode() if isinstance(key, str) else key
    return base64.b64encode(hashlib.sha1(key.strip() + WS_GUID).digest())


class WebSocketClosed(SocketClosedError):
    """The WebSocket is closed. ``code``/``reason``: from the close frame (1006 if none came,
    1005 if it carried no code)."""

    def __init__(self, code: int, reason: str = ""):
        super().__init__(f"WebSocket closed ({code} {reason})".rstrip())
        self.code = code
        self.reason = reason


class WebSocket:
    """One WebSocket over an HTTP/3 request stream, client or server side."""

    def __init__(self, stream: RequestStream, *, client: bool, subprotocol: str | None = None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE, max_queue: int = DEFAULT_QUEUE):
        self.stream = stream
        self.subprotocol = subprotocol
        self.max_message_size = max_message_size
        self._ws = Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)
        self._messages: collections.deque[str | bytes] = collections.deque()
        self._max_queue = max_queue
        self._message_ready: asyncio.Future[None] | None = None
        self._space: asyncio.Future[None] | None = None
        self._partial: list[Any] = []   # str or bytes pieces of one message
        self._partial_size = 0
        self._partial_text: bool | None = None
        self._pings: dict[bytes, asyncio.Future[None]] = {}
        self.close_code: int | None = None        # set when the socket is closed
        self.close_reason = ""
        self.pings_received = 0
        self._close_received: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._send_lock = asyncio.Lock()
        self._reader = asyncio.ensure_future(self._read_loop())

    # ------------------------------------------------------------ receiving
    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self.stream.read()
                if not data:
                    break  # FIN
                self._ws.receive_data(data)
                for event in self._ws.events():
                    await self._handle(event)
                if self._close_received.done():
                    break
        except RemoteProtocolError as exc:
            logger.info("WebSocket protocol error from peer: %s", exc)
            await self._send_frame(CloseConnection(code=CloseReason.PROTOCOL_ERROR, reason=str(exc)[:100]),
                                   end=True)
            self._closed(int(CloseReason.PROTOCOL_ERROR), "protocol error")
        except (StreamResetError, ConnectionTerminatedError):
            pass
        except MessageTooLargeError as exc:
            await self._send_frame(CloseConnection(code=CloseReason.MESSAGE_TOO_BIG, reason="message too big"),
                                   end=True)
            self._closed(int(CloseReason.MESSAGE_TOO_BIG), str(exc))
        finally:
            if not self._close_received.done():
                self._close_received.set_result((1006, ""))
            self._closed(*self._close_received.result())
            if not self.stream.send_ended and self._ws.state != ConnectionState.LOCAL_CLOSING:
                try:  # the peer is gone or done: end our side too
                    await self.stream.end()
                except (StreamResetError, ConnectionTerminatedError, SocketClosedError):
                    pass
            if self.stream.send_ended:
                self.stream.release()

    async def _handle(self, event: Event) -> None:
        if isinstance(event, Message):
            text = isinstance(event, TextMessage)
            if self._partial_text is not None and text != self._partial_text:
                raise RemoteProtocolError("data frame type changed inside a message", event_hint=None)
            self._partial_text = text
            self._partial.append(event.data)
            self._partial_size += len(event.data)
            if self._partial_size > self.max_message_size:
                raise MessageTooLargeError(f"WebSocket message over {self.max_message_size} bytes")
            if event.message_finished:
                message: str | bytes = ("" if text else b"").join(self._partial)
                self._partial, self._partial_size, self._partial_text = [], 0, None
                while len(self._messages) >= self._max_queue:  # bounded: stop reading
                    self._space = asyncio.get_running_loop().create_future()
                    await self._space
                self._messages.append(message)
                self._wake_receiver()
        elif isinstance(event, Ping):
            self.pings_received += 1
            await self._send_frame(event.response())
        elif isinstance(event, Pong):
            waiter = self._pings.pop(bytes(event.payload), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif isinstance(event, CloseConnection):
            code = event.code if event.code is not None else 1005
            if not self._close_received.done():
                self._close_received.set_result((int(code), event.reason or ""))
            if self._ws.state == ConnectionState.REMOTE_CLOSING:
                await self._send_frame(event.response(), end=True)   # answer, then FIN

    def _wake_receiver(self) -> None:
        if self._message_ready is not None and not self._message_ready.done():
            self._message_ready.set_result(None)

    def _closed(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._wake_receiver()
        for waiter in self._pings.values():
            if not waiter.done():
                waiter.set_exception(WebSocketClosed(self.close_code, self.close_reason))
                waiter.exception()

    async def receive(self) -> str | bytes:
        """The next whole message (str for text, bytes for binary). WebSocketClosed once the
        socket is closed and every message before the close was read."""
        while not self._messages:
            if self.close_code is not None:
                raise WebSocketClosed(self.close_code, self.close_reason)
            self._message_ready = asyncio.get_running_loop().create_future()
            try:
                await self._message_ready
            finally:
                self._message_ready = None
        message = self._messages.popleft()
        if self._space is not None and not self._space.done():
            self._space.set_result(None)
        return message

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.receive()
        except WebSocketClosed:
            raise StopAsyncIteration from None

    # ------------------------------------------------------------ sending
    async def _send_frame(self, event: Event, end: bool = False) -> None:
        async with self._send_lock:
            if self.stream.send_ended:
                return
            try:
                data = self._ws.send(event)
            except LocalProtocolError as exc:
                raise WebSocketClosed(self.close_code or 1006, str(exc)) from None
            try:
                await self.stream.send_data(data, end_stream=end)
            except (StreamResetError, ConnectionTerminatedError):
                self._closed(1006, "stream closed")

    def _check_open(self) -> None:
        if self.close_code is not None or self._close_received.done() or \
                self._ws.state != ConnectionState.OPEN:
            code, reason = (self._close_received.result() if self._close_received.done()
                            else (self.close_code or 1006, self.close_reason))
            raise WebSocketClosed(code, reason)

    async def send(self, message: str | bytes, *, final: bool = True) -> None:
        """Send a text (str) or binary (bytes) message. ``final=False`` sends a fragment; the
        message continues with the next calls (same type) until one with ``final=True``."""
        self._check_open()
        event: Message[Any]
        if isinstance(message, str):
            event = TextMessage(data=message, message_finished=final)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            event = BytesMessage(data=bytes(message), message_finished=final)
        else:
            raise InvalidOptionError(f"WebSocket messages are str or bytes, not {type(message).__name__}")
        await self._send_frame(event)

    async def ping(self, payload: bytes = b"", timeout: float | None = 10) -> float:
        """Ping and wait for the pong; returns the round trip in seconds."""
        self._check_open()
        payload = payload or asyncio.get_running_loop().time().hex().encode()[:16]
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pings[payload] = waiter
        start = asyncio.get_running_loop().time()
        await self._send_frame(Ping(payload=payload))
        await asyncio.wait_for(waiter, timeout)
        return asyncio.get_running_loop().time() - start

    async def close(self, code: int = 1000, reason: str = "", timeout: float = CLOSE_TIMEOUT) -> None:
        """The closing handshake: our close frame, the peer's answer (up to ``timeout``), FIN."""
        if not (1000 <= code <= 4999) or len(reason.encode()) > 123:
            raise InvalidOptionError("close code must be 1000-4999 and the reason at most 123 bytes")
        if self._ws.state == ConnectionState.OPEN:
            await self._send_frame(CloseConnection(code=code, reason=reason))
            try:
                await asyncio.wait_for(asyncio.shield(self._close_received), timeout)
            except asyncio.TimeoutError:
                self.stream.reset()
        if not self.stream.send_ended:
            try:
                await self.stream.end()
            except (StreamResetError, ConnectionTerminatedError):
                pass
        self._closed(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> tuple[int, str]:
        """(code, reason) of the close the peer sent (1006 if the stream ended without one)."""
        try:
            await asyncio.shield(self._reader)
        except Exception:
            pass
        self.stream.release()
        return self._close_received.result() if self._close_received.done() else (1006, "")


# ---------------------------------------------------------------- client
async def open_websocket(protocol: H3ClientProtocol, target: str, *, headers: HeadersIn = None,
                         subprotocols: Iterable[str] = (), send_key: bool = False, **options: Any) -> WebSocket:
    subprotocols = list(subprotocols)   # iterated twice below
    await protocol.require_extended_connect()
    stream = protocol.open_stream()
    request = protocol._request_headers("CONNECT", target, headers, "websocket")
    request.append((b"sec-websocket-version", b"13"))
    if subprotocols:
        request.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode()))
    key = None
    if send_key:  # what RFC 6455 clients do; RFC 9220 does not need it
        import os
        key = base64.b64encode(os.urandom(16))
        request.append((b"sec-websocket-key", key))
    await stream.send_headers(request)
    try:
        response = await stream.receive_headers()
    except BaseException:
        stream.release()
        raise
    status = int(header_value(response, ":status") or 0)   # aioquic refuses a response without one
    if not 200 <= status < 300:
        stream.release()
        raise ConnectError(f"WebSocket {target} refused with status {status}")
    if key is not None and header_value(response, "sec-websocket-accept") != accept_value(key).decode():
        stream.reset()
        raise ConnectError("WebSocket server answered with a wrong sec-websocket-accept")
    chosen = header_value(response, "sec-websocket-protocol")
    if chosen is not None and chosen not in subprotocols:
        stream.reset()
        raise ConnectError(f"WebSocket server chose a subprotocol we did not offer: {chosen!r}")
    return WebSocket(stream, client=True, subprotocol=chosen, **options)


# ---------------------------------------------------------------- server: the ASGI websocket scope
@dataclass
class _ServedSocket:
    """Where one ASGI websocket exchange stands (shared by its receive and send)."""
    connect_sent: bool = False
    ws: WebSocket | None = None
    denied: bool = False


async def serve_websocket(protocol: H3Protocol, stream: RequestStream, scope: Scope, app: ASGIApp | None) -> None:
    request = stream.headers or []
    offered = header_value(request, "sec-websocket-protocol")
    scope["subprotocols"] = [p.strip() for p in offered.split(",")] if offered else []
    state = _ServedSocket()
    accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def receive() -> ASGIMessage:
        if not state.connect_sent:
            state.connect_sent = True
            return {"type": "websocket.connect"}
        if state.ws is None:
            await asyncio.shield(accepted)
        ws = state.ws
        if ws is None:
            return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        try:
            message = await ws.receive()
        except WebSocketClosed as exc:
            return {"type": "websocket.disconnect", "code": exc.code, "reason": exc.reason}
        if isinstance(message, str):
            return {"type": "websocket.receive", "text": message}
        return {"type": "websocket.receive", "bytes": message}

    async def send(message: ASGIMessage) -> None:
        kind = message["type"]
        ws = state.ws
        if kind == "websocket.accept":
            if ws is not None or state.denied:
                raise RuntimeError("websocket.accept twice or after close")
            response: Headers = [(b":status", b"200")]
            subprotocol = message.get("subprotocol")
            if subprotocol is not None:
                response.append((b"sec-websocket-protocol", subprotocol.encode()))
            key = header_value(request, "sec-websocket-key")
            if key is not None:
                response.append((b"sec-websocket-accept", accept_value(key)))
            response += normalize_headers(message.get("headers"))
            await stream.send_headers(response)
            state.ws = WebSocket(stream, client=False, subprotocol=subprotocol)
            accepted.set_result(None)
        elif kind == "websocket.send":
            if ws is None:
                raise RuntimeError("websocket.send before websocket.accept")
            data = message.get("bytes")
            await ws.send(data if data is not None else message.get("text", ""))
        elif kind == "websocket.close":
            if ws is None:  # closing before accepting denies the connection (ASGI: 403)
                state.denied = True
                if not stream.headers_sent:
                    await stream.send_headers([(b":status", b"403")], end_stream=True)
                if not accepted.done():
                    accepted.set_result(None)
            else:
                await ws.close(int(message.get("code", 1000)), message.get("reason") or "")
        else:
            raise RuntimeError(f"unknown ASGI message type {kind!r} for a websocket scope")

    try:
        if app is None:
            raise RuntimeError("no application")
        await app(scope, receive, send)
    except (StreamResetError, ConnectionTerminatedError, WebSocketClosed):
        pass
    except Exception:
        logger.exception("ASGI websocket app failed on %s", scope.get("path"))
        if state.ws is not None and state.ws.close_code is None:
            await state.ws.close(1011, "server error")
    finally:
        ws = state.ws
        if ws is None and not stream.headers_sent:
            await stream.send_headers([(b":status", b"403")], end_stream=True)
        elif ws is not None and ws.close_code is None and ws._ws.state == ConnectionState.OPEN:
            await ws.close(1000, "")
        if not accepted.done():
            accepted.set_result(None)
        if ws is not None:
            await ws.wait_closed()
        else:
            stream.release()


__all__ = ["WebSocket", "WebSocketClosed", "accept_value"]
