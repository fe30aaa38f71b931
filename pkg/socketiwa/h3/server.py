"""HTTP/3 server: serves an ASGI 3 application (``async def app(scope, receive, send)``), so
any ASGI framework runs over QUIC, on CPython and in the browser.

Scopes: ``http`` (streaming request and response bodies, response trailers, many requests at
once on one connection) and ``websocket`` (RFC 9220 WebSocket over HTTP/3, see websocket.py).
WebTransport sessions (``CONNECT`` with ``:protocol = webtransport``) go to a separate, explicit
handler (see webtransport.py), since ASGI has no standard for them.

Other Extended CONNECT protocols (RFC 9220) reach the app as an ``http`` scope with method
``CONNECT``; the request body is the tunnel's data. Every scope has
``scope["extensions"]["socketiwa.h3"]``: ``protocol`` (the ``:protocol`` value, or None) and
``stream`` (the RequestStream: HTTP datagrams of RFC 9297 with ``send_datagram`` /
``await receive_datagram()``, ``max_datagram_size``, flow-control state).
"""
from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, cast
from urllib.parse import unquote

from aioquic.asyncio import serve as quic_serve
from aioquic.asyncio.protocol import QuicStreamHandler
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from .. import aio
from ..errors import SocketClosedError
from .tickets import SAFE_EARLY_METHODS
from ._protocol import (H3_INTERNAL_ERROR, H3Protocol, Headers, RequestStream, StreamResetError,
                        ConnectionTerminatedError, header_value, to_bytes)

if TYPE_CHECKING:
    from .tickets import ServerTicketStore
    from .webtransport import WebTransportHandler

logger = logging.getLogger("socketiwa.h3")

Scope = dict[str, Any]       # ASGI scopes and messages are plain dicts
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]
ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}


def build_scope(protocol: H3Protocol, stream: RequestStream, headers: Headers, scope_type: str) -> Scope:
    pseudo = {k: v for k, v in headers if k.startswith(b":")}
    raw = pseudo.get(b":path", b"/")
    raw_path, _, query = raw.partition(b"?")
    fields = [(k, v) for k, v in headers if not k.startswith(b":")]
    if b":authority" in pseudo and not any(k == b"host" for k, _ in fields):
        fields.insert(0, (b"host", pseudo[b":authority"]))  # ASGI apps look for Host
    client = protocol._quic._network_paths[0].addr if protocol._quic._network_paths else None
    sockname = protocol._transport.get_extra_info("sockname") if protocol._transport else None
    extensions: dict[str, Any] = {}
    scope: Scope = {
        "type": scope_type,
        "asgi": dict(ASGI_VERSION),
        "http_version": "3",
        "scheme": (pseudo.get(b":scheme", b"https").decode() if scope_type == "http"
                   else "wss"),
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": fields,
        "client": tuple(client[:2]) if client else None,
        "server": tuple(sockname[:2]) if sockname else None,
        "extensions": extensions,
    }
    if scope_type == "http":
        scope["method"] = pseudo.get(b":method", b"GET").decode()
        extensions["http.response.trailers"] = {}
    # Not standard ASGI: the stream itself (flow-control state, HTTP datagrams) and the
    # Extended CONNECT protocol (None for ordinary requests).
    protocol_name = pseudo.get(b":protocol")
    extensions["socketiwa.h3"] = {
        "protocol": protocol_name.decode() if protocol_name is not None else None, "stream": stream,
        # True when the request came in 0-RTT data, before the handshake completed (tickets.py)
        "early_data": protocol.in_early_data}
    return scope


class HttpCycle:
    """One request/response exchange of an ASGI ``http`` scope."""

    def __init__(self, protocol: "H3ServerProtocol", stream: RequestStream, scope: Scope, app: ASGIApp):
        self.protocol = protocol
        self.stream = stream
        self.scope = scope
        self.app = app
        self.status: int | None = None
        self.response_headers: Headers = []
        self.expect_trailers = False
        self.trailers: Headers = []
        self.body_ended = False      # our response body is complete (trailers may follow)
        self.response_done = False
        self.request_complete = False   # the app was given the whole request body
        self._finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def receive(self) -> Message:
        if not self.request_complete:
            try:
                body = await self.stream.read()
            except (StreamResetError, ConnectionTerminatedError):
                return {"type": "http.disconnect"}
            # a request without a body still gets one (empty, final) http.request message
            self.request_complete = self.stream.receive_ended
            return {"type": "http.request", "body": body, "more_body": not self.request_complete}
        # The whole request was read: the next message is the disconnect, once it happens
        # (the response is complete, or the client abandoned the stream).
        waiters: list[asyncio.Future[Any]] = [self._finished, self.stream.gone]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.response_done:
            raise RuntimeError(f"ASGI message {kind!r} after the response completed")
        if kind == "http.response.start":
            if self.status is not None:
                raise RuntimeError("http.response.start sent twice")
            self.status = int(message["status"])
            self.response_headers = [(to_bytes(k).lower(), to_bytes(v)) for k, v in message.get("headers", [])]
            self.expect_trailers = bool(message.get("trailers", False))
            # Sent at once, not with the first body: a tunnel (CONNECT) or an event stream
            # must reach the client before any body exists.
            await self.stream.send_headers([(b":status", str(self.status).encode())] + self.response_headers)
        elif kind == "http.response.body":
            if self.status is None:
                raise RuntimeError("http.response.body before http.response.start")
            if self.body_ended:
                raise RuntimeError("http.response.body after the body ended")
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            end = not more and not self.expect_trailers
            if body or end:
                await self.stream.send_data(body, end_stream=end)
            self.body_ended = not more
            if end:
                self._complete()
        elif kind == "http.response.trailers":
            if not self.expect_trailers:
                raise RuntimeError("http.response.trailers without trailers=True in the start")
            self.trailers += [(to_bytes(k).lower(), to_bytes(v)) for k, v in message.get("headers", [])]
            if not message.get("more_trailers", False):
                await self.stream.send_headers(self.trailers, end_stream=True)
                self._complete()
        else:
            raise RuntimeError(f"unknown ASGI message type {kind!r} for an http scope")

    def _complete(self) -> None:
        self.response_done = True
        if not self._finished.done():
            self._finished.set_result(None)

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except (StreamResetError, ConnectionTerminatedError):
            pass  # the client went away; nothing left to answer
        except Exception:
            logger.exception("ASGI app failed on %s", self.scope.get("path"))
            if not self.stream.headers_sent and self.status is None:
                await self._send_plain(500, b"Internal Server Error\n")
            else:
                self.stream.reset(H3_INTERNAL_ERROR)
        else:
            if self.status is None:  # the app returned without answering
                await self._send_plain(500, b"Internal Server Error: no response\n")
            elif not self.response_done:
                await self._finish_open_response()
        finally:
            self._complete()
            self.stream.release()

    async def _finish_open_response(self) -> None:
        try:
            if not self.stream.send_ended:
                await self.stream.end()
        except (StreamResetError, ConnectionTerminatedError):
            pass

    async def _send_plain(self, status: int, body: bytes) -> None:
        try:
            await self.stream.send_headers([(b":status", str(status).encode()),
                                            (b"content-type", b"text/plain"),
                                            (b"content-length", str(len(body)).encode())])
            await self.stream.send_data(body, end_stream=True)
        except (StreamResetError, ConnectionTerminatedError):
            pass


class H3ServerProtocol(H3Protocol):
    """A server connection: ASGI ``http`` and ``websocket`` scopes, WebTransport sessions,
    425 Too Early for unsafe requests in 0-RTT data. ``h3.serve`` creates one per client."""
    def __init__(self, quic: QuicConnection, stream_handler: QuicStreamHandler | None = None, *,
                 app: ASGIApp | None = None, webtransport: WebTransportHandler | None = None,
                 state: dict[str, Any] | None = None):
        super().__init__(quic, stream_handler)
        self.app = app
        self.state = state     # ASGI lifespan state, copied into each request scope
        self.webtransport_handler = webtransport
        self.tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def request_received(self, stream: RequestStream, headers: Headers, ended: bool) -> None:
        method = header_value(headers, ":method")
        protocol = header_value(headers, ":protocol")
        if self.in_early_data and (method not in SAFE_EARLY_METHODS or protocol is not None):
            # 0-RTT data can be replayed: only safe methods are acted on (tickets.py, RFC 8470)
            self._spawn(self._too_early(stream))
        elif method == "CONNECT" and protocol == "webtransport":
            from .webtransport import WebTransportSession, serve_session
            self._spawn(serve_session(WebTransportSession(self, stream, headers), self.webtransport_handler))
        elif method == "CONNECT" and protocol == "websocket":
            from .websocket import serve_websocket
            scope = build_scope(self, stream, headers, "websocket")
            if self.state is not None:
                scope["state"] = dict(self.state)
            self._spawn(serve_websocket(self, stream, scope, self.app))
        elif self.app is None:
            self._spawn(HttpCycle(self, stream, {}, _not_found).run())
        else:
            scope = build_scope(self, stream, headers, "http")
            if self.state is not None:
                scope["state"] = dict(self.state)
            self._spawn(HttpCycle(self, stream, scope, self.app).run())

    async def _too_early(self, stream: RequestStream) -> None:
        try:
            await stream.send_headers([(b":status", b"425"), (b"content-length", b"0")], end_stream=True)
        except (StreamResetError, ConnectionTerminatedError):
            pass
        stream.release()


async def _not_found(scope: Scope, receive: Callable[[], Awaitable[Message]],
                     send: Callable[[Message], Awaitable[None]]) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"no application\n"})


class Lifespan:
    """The ASGI ``lifespan`` protocol: the app's startup before the first request, its
    shutdown at ``aclose``; ``state`` is copied into every request scope."""

    def __init__(self, app: ASGIApp, mode: str):
        self.app = app
        self.mode = mode            # "auto": an app that does not speak lifespan is fine
        self.state: dict[str, Any] = {}
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.supported = False

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": dict(ASGI_VERSION), "state": self.state}
        try:
            await self.app(scope, self._inbox.get, self._outbox.put)
        except BaseException as exc:
            await self._outbox.put({"type": "_failed", "error": exc})
        else:
            await self._outbox.put({"type": "_returned"})

    async def _step(self, event: str) -> None:
        await self._inbox.put({"type": f"lifespan.{event}"})
        reply = await self._outbox.get()
        if reply["type"] == f"lifespan.{event}.complete":
            self.supported = True
            return
        if reply["type"] == f"lifespan.{event}.failed":
            raise RuntimeError(f"ASGI lifespan {event} failed: {reply.get('message', '')}")
        if self.mode == "on" or self.supported:
            error = reply.get("error")
            raise RuntimeError(f"ASGI lifespan {event}: the app did not complete it ({error!r})")
        logger.debug("the ASGI app does not support lifespan (%r)", reply)

    async def startup(self) -> None:
        self._task = asyncio.ensure_future(self._run())
        await self._step("startup")

    async def shutdown(self) -> None:
        if self.supported:
            await self._step("shutdown")


class H3Server:
    """A listening HTTP/3 server (wraps aioquic's QuicServer)."""

    def __init__(self, quic_server: QuicServer, lifespan: Lifespan | None = None):
        self.quic_server = quic_server
        self.lifespan = lifespan
        if quic_server._transport is None:
            raise SocketClosedError("the QUIC server's socket is closed")
        sockname = quic_server._transport.get_extra_info("sockname")
        self.host, self.port = sockname[0], sockname[1]

    @property
    def connections(self) -> list[H3ServerProtocol]:
        """The open connections (one protocol object each)."""
        # aioquic keys each connection by all its connection ids: one protocol, many keys
        return list({cast(H3ServerProtocol, p) for p in self.quic_server._protocols.values()})

    def close(self) -> None:
        """Stop listening and drop every connection (aioquic's QuicServer.close)."""
        self.quic_server.close()

    async def aclose(self, error_code: int = 0x100, reason: str = "server closing") -> None:
        """Close every connection with CONNECTION_CLOSE (H3_NO_ERROR), then stop listening,
        letting the socket's asynchronous close run."""
        for protocol in self.connections:
            protocol.close(error_code=error_code, reason_phrase=reason)
        self.quic_server.close()
        for _ in range(3):
            await asyncio.sleep(0)
        if self.lifespan is not None:
            lifespan, self.lifespan = self.lifespan, None
            await lifespan.shutdown()


async def serve(host: str, port: int, *, configuration: QuicConfiguration, app: ASGIApp | None = None,
                webtransport: WebTransportHandler | None = None, retry: bool = False,
                tickets: ServerTicketStore | None = None, lifespan: str = "auto", **kwargs: Any) -> H3Server:
    """Serve ``app`` (ASGI 3) over HTTP/3 on ``host:port`` (port 0: any). ``webtransport`` is an
    ``async def handler(session)`` for WebTransport sessions (see webtransport.py). ``tickets``
    (a tickets.ServerTicketStore) issues session tickets and allows resumption and 0-RTT.
    ``lifespan``: "auto" runs the app's ASGI lifespan startup first if it speaks it (its
    shutdown runs in ``H3Server.aclose``), "on" requires it, "off" skips it. Further keyword
    arguments go to aioquic's ``serve``."""
    aio.install()
    life = None
    if app is not None and lifespan != "off":
        life = Lifespan(app, lifespan)
        await life.startup()
    if tickets is not None:
        kwargs.update(session_ticket_fetcher=tickets.fetch, session_ticket_handler=tickets.add)
    create = functools.partial(H3ServerProtocol, app=app, webtransport=webtransport,
                               state=life.state if life is not None and life.supported else None)
    quic_server = await quic_serve(host, port, configuration=configuration, create_protocol=create,
                                   retry=retry, **kwargs)
    return H3Server(quic_server, life)


__all__ = ["serve", "H3Server", "H3ServerProtocol", "ASGIApp", "Scope", "Message"]
