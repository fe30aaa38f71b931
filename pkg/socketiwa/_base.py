"""What UDP and TCP connection objects share: ready state, events, acks, the receive queue."""
from __future__ import annotations

import asyncio
import enum
import itertools
from typing import Any, NamedTuple

from . import wire
from .errors import AckTimeoutError, BackpressureError, FrameError, SocketClosedError
from .events import EventEmitter

RESERVED_EVENTS = frozenset({"open", "message", "error", "close", "connect", "disconnect",
                             "connection"})
_CLOSED = object()  # queue sentinel


class ReadyState(str, enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class RemoteInfo(NamedTuple):
    """Where a datagram came from (``rinfo`` in the message handler)."""
    address: str
    port: int
    size: int
    family: str = "IPv4"


class Datagram(NamedTuple):
    """One received UDP message, as yielded by ``async for`` over a UDP socket."""
    data: bytes
    rinfo: RemoteInfo


class Ack:
    """The callback an event handler gets when the sender asked for an acknowledgement."""

    __slots__ = ("_send_soon", "_track", "ack_id", "used")

    def __init__(self, send_soon, ack_id: int, track=None):
        self._send_soon = send_soon  # bytes -> Future: the send is admitted (ordered) right now
        self._track = track
        self.ack_id = ack_id
        self.used = False

    def __call__(self, response: Any = None) -> asyncio.Future:
        if self.used:
            raise RuntimeError("ack() may be called only once")
        self.used = True
        fut = self._send_soon(wire.encode_ack(self.ack_id, response))
        if self._track is not None:  # counts against the socket's handler-task bound
            self._track(fut, "ack")
        return fut


class SocketBase(EventEmitter):
    """Common machinery. Subclasses provide ``_send_envelope`` and the receive loop."""

    def __init__(self, *, max_queue: int = 1024, max_pending_acks: int = 4096,
                 ack_timeout: float = 5.0):
        super().__init__()
        self.ready_state = ReadyState.CONNECTING
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=max_queue)
        self._queue_ended = False
        # Async handlers (and ack sends) in flight are bounded like the queue: at the bound the
        # receive loop waits, so TCP pushes back on the sender and UDP drops as UDP does.
        self.max_handler_tasks = max_queue
        self._iterating = False
        self._pending: dict[int, asyncio.Future] = {}
        self._ack_ids = itertools.cycle(range(1, 2**32))
        self._max_pending = max_pending_acks
        self.ack_timeout = ack_timeout
        self._reader_task: asyncio.Task | None = None
        self._closed_event = asyncio.Event()

    # ---- state
    def _require_open(self) -> None:
        if self.ready_state is not ReadyState.OPEN:
            raise SocketClosedError(f"socket is {self.ready_state.value}")

    @property
    def closed(self) -> bool:
        return self.ready_state is ReadyState.CLOSED

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    # ---- incoming messages: handlers and/or the bounded queue
    async def _handler_room(self) -> None:
        """Called by receive loops before each message or event is dispatched."""
        if len(self._tasks) >= self.max_handler_tasks:
            await self._wait_task_room(self.max_handler_tasks)

    def _report(self, exc: BaseException) -> None:
        """An ``error`` event for one bad input or failed step; the receive loop goes on."""
        self._dispatch("error", exc)

    async def _deliver(self, item: Any, *handler_args: Any) -> None:
        has_handlers = self._dispatch("message", *handler_args)
        if self._iterating or not has_handlers:
            # Bounded: when full, this await stops the receive loop, which stops reading the
            # socket (real backpressure) instead of dropping or growing without limit.
            await self._queue.put(item)

    def __aiter__(self):
        self._iterating = True
        return self

    async def _next_item(self, timeout: float | None):
        try:
            item = self._queue.get_nowait()      # fast path: no timer, no task
        except asyncio.QueueEmpty:
            if self._queue_ended:
                return _CLOSED
            item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # later readers stop too
        return item

    async def __anext__(self):
        item = await self._next_item(None)
        if item is _CLOSED:
            raise StopAsyncIteration
        return item

    async def receive(self, timeout: float | None = None):
        """Next message (UDP: a Datagram, TCP: bytes). Messages queued before the socket closed
        are still returned; after them it raises SocketClosedError."""
        self._iterating = True
        item = await self._next_item(timeout)
        if item is _CLOSED:
            raise SocketClosedError("socket closed")
        return item

    def _end_queue(self) -> None:
        # Queued messages stay readable. The sentinel wakes readers waiting on an empty queue; a
        # full queue has no waiting readers, and they find _queue_ended once it is drained.
        self._queue_ended = True
        if not self._queue.full():
            self._queue.put_nowait(_CLOSED)

    def _stop_receiving(self) -> None:
        """close()/abort(): stop the receive loop at once (it may be waiting on a full queue or on
        handler room) unless it is the caller."""
        task = self._reader_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    # ---- events and acks
    def _check_event_name(self, event: str) -> None:
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved lifecycle event and cannot be emitted")

    def _new_ack(self) -> tuple[int, asyncio.Future]:
        if len(self._pending) >= self._max_pending:
            raise BackpressureError(f"{len(self._pending)} acknowledgements already pending")
        ack_id = next(self._ack_ids)
        while ack_id in self._pending:
            ack_id = next(self._ack_ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[ack_id] = fut
        return ack_id, fut

    async def _await_ack(self, ack_id: int, fut: asyncio.Future, event: str, timeout: float | None):
        timeout = self.ack_timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise AckTimeoutError(f"no ack for {event!r} within {timeout} s") from None
        finally:
            self._pending.pop(ack_id, None)

    def _resolve_ack(self, ack_id: int, payload: Any) -> None:
        fut = self._pending.get(ack_id)
        if fut is not None and not fut.done():
            fut.set_result(payload)

    def _fail_pending(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(SocketClosedError("socket closed before the ack arrived"))
        self._pending.clear()

    def _on_envelope(self, env: wire.Envelope, reply, extra: tuple = ()) -> bool:
        """Handle an EVENT or ACK. ``reply(envelope)`` returns a Future sending it back to the
        sender. Returns False for DATA."""
        if env.kind == wire.KIND_EVENT:
            if env.name in RESERVED_EVENTS:  # a peer must not fake our lifecycle events
                self._report(FrameError(f"peer sent reserved event name {env.name!r}"))
                return True
            ack = Ack(reply, env.ack_id, self._track) if env.ack_id else None
            self._dispatch(env.name, env.payload, *extra, ack)
            return True
        if env.kind == wire.KIND_ACK:
            self._resolve_ack(env.ack_id, env.payload)
            return True
        return False

    async def __aenter__(self):
        return self

    async def abort(self) -> None:
        """Close at once: see ``close(timeout=0)``."""
        await self.close(timeout=0)

    async def __aexit__(self, *exc):
        await self.close()
