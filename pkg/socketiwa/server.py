"""TCP server with socket.io-style rooms (tcp.py knows nothing of servers or rooms)."""
from __future__ import annotations

import asyncio
import types
from typing import Any, AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Self

from . import wire
from ._base import RESERVED_EVENTS, ReadyState
from .backends import get_backend
from .backends.base import ServerTransport, StreamTransport
from .errors import InvalidOptionError, SocketClosedError
from .events import EventEmitter
from .seedwire import codec_for
from .session import DEFAULT_CODEC
from .tcp import FRAMINGS, TCPSocket
from .udp import _as_bytes, _check_port


class Broadcast:
    """A set of target connections: ``server.to("room")``, chainable with ``.to("other")``."""

    def __init__(self, server: "TCPServer", rooms: Iterable[str] | None):
        self._server = server
        self._rooms = None if rooms is None else set(rooms)

    def to(self, room: str) -> "Broadcast":
        """These targets and the members of ``room`` too."""
        return Broadcast(self._server, (self._rooms or set()) | {room})

    def connections(self) -> list[TCPSocket]:
        """The target connections now, in the order they connected."""
        if self._rooms is None:
            return list(self._server.connections)
        members: set[TCPSocket] = set()
        for room in self._rooms:
            members |= self._server._rooms.get(room, set())
        return [c for c in self._server.connections if c in members]  # stable order

    async def _each(self, send: Callable[[TCPSocket], Awaitable[None]]) -> int:
        targets = [c for c in self.connections() if c.ready_state is ReadyState.OPEN]
        results = await asyncio.gather(*(send(c) for c in targets), return_exceptions=True)
        for conn, res in zip(targets, results, strict=True):
            if isinstance(res, Exception):
                conn._dispatch("error", res)
        return sum(1 for r in results if not isinstance(r, BaseException))

    async def emit(self, event: str, *args: Any) -> int:
        """Send an event to every target; returns how many connections it reached."""
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved lifecycle event and cannot be emitted")
        envelope = self._server.codec.encode_event(event, args, 0)  # once for all targets
        return await self._each(lambda c: c._send_envelope(envelope))

    async def send(self, data: Any) -> int:
        """Send a message to every target; returns how many connections it reached."""
        raw = _as_bytes(data)
        return await self._each(lambda c: c.send(raw))


class TCPServer(EventEmitter):
    """Events: ``open``, ``connection(conn)`` then ``connect(conn)`` for each client that
    connects (``connect`` is the seed's name), ``disconnect(conn, info)`` (a connection ended, whichever side
    closed it; ``info`` as its ``close`` handlers get), ``error(exc)``, ``close``.

    Rooms live here: ``conn.join(room)`` and ``server.to(room)``."""

    def __init__(self, host: str, local_port: int = 0, backlog: int | None = None, *,
                 ipv6_only: bool | None = None, framing: str = "frames",
                 max_message_size: int = wire.DEFAULT_MAX_MESSAGE, max_connections: int = 1024,
                 codec: Any = None, wire: str = "socketiwa", **connection_options: Any):
        super().__init__()
        codec = codec_for(wire, codec)  # wire="socketiwa-js": the JS library's envelopes
        _check_port(local_port, "local_port", allow_zero=True)
        if backlog is not None and (not isinstance(backlog, int) or backlog < 1):
            raise InvalidOptionError("backlog must be a positive integer")
        if framing not in FRAMINGS:
            raise InvalidOptionError(f"framing must be one of {FRAMINGS}, got {framing!r}")
        self.host, self.backlog, self.ipv6_only = host, backlog, ipv6_only
        self.requested_port = local_port
        self.framing = framing
        self.max_message_size = max_message_size
        self.max_connections = max_connections
        self.connection_options = connection_options
        self.codec = codec or DEFAULT_CODEC
        self.ready_state = ReadyState.CONNECTING
        self.connections: list[TCPSocket] = []
        self._rooms: dict[str, set[TCPSocket]] = {}
        self._transport: ServerTransport | None = None
        self._closed_event = asyncio.Event()
        self.local_address: str | None = None
        self.local_port: int | None = None

    async def open(self) -> "TCPServer":
        """Start listening; returns this server, OPEN (``local_port`` says which port when 0
        was asked for). Raises ConnectError (address in use, say) or PermissionDeniedError;
        the server is then CLOSED. ``create_tcp_server`` does both steps."""
        if self.ready_state is not ReadyState.CONNECTING:
            raise SocketClosedError(f"server is already {self.ready_state.value}")
        try:
            transport = self._transport = await get_backend().open_tcp_server(
                self.host, self.requested_port, self.backlog, self.ipv6_only)
        except BaseException:
            self.ready_state = ReadyState.CLOSED
            self._closed_event.set()
            raise
        self.local_address = transport.endpoints.local_address
        self.local_port = transport.endpoints.local_port
        self.ready_state = ReadyState.OPEN
        transport.start(types.SimpleNamespace(connection_made=self._connection_made,
                                                    connection_lost=self._listener_lost))
        self._dispatch("open")
        return self

    # ---- the backend's accept sink
    def _connection_made(self, transport: StreamTransport) -> None:
        if self.ready_state is not ReadyState.OPEN:
            transport.abort()
            return
        if len(self.connections) >= self.max_connections:
            transport.abort()
            self._dispatch("error", SocketClosedError(
                f"connection refused: max_connections={self.max_connections} reached"))
            return
        conn = TCPSocket(framing=self.framing, max_message_size=self.max_message_size,
                         codec=self.codec, **self.connection_options)
        conn.server = self
        self.connections.append(conn)
        conn._attach(transport)
        self._dispatch("connection", conn)
        self._dispatch("connect", conn)

    def _listener_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self._dispatch("error", exc)

    # ---- rooms
    def _join(self, conn: TCPSocket, room: str) -> None:
        self._rooms.setdefault(room, set()).add(conn)
        conn.rooms.add(room)

    def _leave(self, conn: TCPSocket, room: str) -> None:
        members = self._rooms.get(room)
        if members is not None:
            members.discard(conn)
            if not members:
                del self._rooms[room]
        conn.rooms.discard(room)

    def _forget(self, conn: TCPSocket) -> None:
        for room in list(conn.rooms):
            self._leave(conn, room)
        if conn in self.connections:
            self.connections.remove(conn)
            self._dispatch("disconnect", conn, conn.close_info)

    def rooms(self) -> dict[str, int]:
        """Each room that has members, with how many."""
        return {room: len(members) for room, members in self._rooms.items()}

    def to(self, room: str) -> Broadcast:
        """The connections in ``room``, to ``emit``/``send`` to (chain ``.to()`` for more rooms)."""
        return Broadcast(self, [room])

    async def emit(self, event: str, *args: Any) -> int:
        """Send an event to every connection."""
        return await Broadcast(self, None).emit(event, *args)

    async def send(self, data: Any) -> int:
        """Send a message to every connection; returns how many it reached."""
        return await Broadcast(self, None).send(data)

    def __aiter__(self) -> AsyncIterator[TCPSocket]:
        """Iterate over incoming connections (an alternative to the ``connection`` event)."""
        queue: asyncio.Queue[TCPSocket] = asyncio.Queue(maxsize=self.backlog or 128)

        def on_conn(conn: TCPSocket) -> None:
            queue.put_nowait(conn) if not queue.full() else conn._dispatch(
                "error", SocketClosedError("connection iterator queue full"))
        self.on("connection", on_conn)

        async def gen() -> AsyncGenerator[TCPSocket, None]:
            try:
                while self.ready_state is ReadyState.OPEN or not queue.empty():
                    getter = asyncio.ensure_future(queue.get())
                    closed = asyncio.ensure_future(self._closed_event.wait())
                    done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if getter in done:
                        closed.cancel()
                        yield getter.result()
                    else:
                        getter.cancel()
                        break
            finally:
                self.off("connection", on_conn)
        return gen()

    async def close(self) -> None:
        """Stop accepting, close every connection, wait until all are closed."""
        if self.ready_state is ReadyState.CLOSED:
            return
        transport = self._transport
        was_open = transport is not None
        self.ready_state = ReadyState.CLOSING
        if transport is not None:
            await transport.close()
        await asyncio.gather(*(c.close() for c in list(self.connections)), return_exceptions=True)
        self.ready_state = ReadyState.CLOSED
        self._closed_event.set()
        if was_open:
            self._dispatch("close")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def create_tcp_server(host: str, local_port: int = 0, backlog: int | None = None,
                            **options: Any) -> TCPServer:
    """Listen on ``host:local_port`` (0 picks a free port; see ``server.local_port``)."""
    return await TCPServer(host, local_port, backlog, **options).open()
