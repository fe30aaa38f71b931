"""What UDP and TCP connection objects share: the session, the sinks' receive path, acks, the
bounded buffer and the receive queue.

Receiving is pushed: the backend calls the socket's sink once per arrival; the socket feeds the
bytes to its sans-I/O :class:`~socketiwa.session.Session` and acts on the events right there
(handlers run, messages are queued). When there is no room (async handler tasks at their bound,
or the receive queue full) events wait in one bounded buffer, ``_backlog``, and the backend is
paused; it resumes once the backlog drains. TCP then pushes back on the sender; UDP drops.
"""
from __future__ import annotations

import asyncio
import collections
import math
import time
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Self

from .errors import AckTimeoutError, SocketClosedError
from .events import EventEmitter
from .session import (AckFailed, AckReceived, CloseInfo, CloseReceived, Event,
                      EventReceived, MessageReceived, PeerClosed, ProtocolError,
                      RESERVED_EVENTS, ReadyState, Session, ack_value)

if TYPE_CHECKING:
    from .backends.base import StreamTransport, UdpTransport
_CLOSED = object()  # what a reader gets once the queue has ended and is empty


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


def _loop_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """``loop.time``, or time.monotonic itself where that is all loop.time does (asyncio's
    loops and Pyodide's WebLoop): one Python call fewer per read with a timeout."""
    method = getattr(type(loop), "time", None)
    if method is asyncio.BaseEventLoop.time or (
            type(loop).__name__ == "WebLoop" and getattr(method, "__module__", "") == "pyodide.webloop"):
        return time.monotonic
    return loop.time


class _Inbox:
    """The receive queue: bounded, several readers, an end that leaves queued items readable.

    A reader that finds it empty parks a future (``wait``); ``put_nowait`` hands the next item
    straight to the oldest parked reader's future instead of queueing it and waking the reader to
    fetch it (one step and one wake per message fewer). Read timeouts share one loop timer,
    re-armed only when it fires, instead of a wait_for timer per read."""

    __slots__ = ("_items", "maxsize", "_waiters", "ended", "_timer", "_timer_at", "_loop", "_now")

    def __init__(self, maxsize: int) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self.maxsize = maxsize
        # Parked readers, oldest first, each with its deadline (inf: no timeout).
        self._waiters: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.ended = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None   # the loop _now belongs to
        self._now: Callable[[], float] = time.monotonic

    def qsize(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self.maxsize

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        waiters = self._waiters
        if waiters and not self._items:
            while waiters:
                fut = waiters.popleft()[0]
                if not fut.done():  # (one that timed out or was cancelled is done)
                    fut.set_result(item)
                    return
        self._items.append(item)

    def _pass_on(self) -> None:
        # Items and parked readers at once (an item put back by a cancelled reader): hand over.
        items, waiters = self._items, self._waiters
        while items and waiters:
            fut = waiters.popleft()[0]
            if not fut.done():
                fut.set_result(items.popleft())

    def end(self) -> None:
        self.ended = True
        waiters, self._waiters = self._waiters, collections.deque()
        for fut, _ in waiters:
            if not fut.done():
                fut.set_result(_CLOSED)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def wait(self, timeout: float | None) -> asyncio.Future[Any]:
        """A future for the next item, for a reader that found the queue empty: its result is the
        item (``_CLOSED`` once ended); TimeoutError after ``timeout`` seconds. A reader that stops
        waiting for any other reason must call ``abandon`` (the item may already be in it)."""
        loop = asyncio.get_running_loop()
        # A plain Future: Pyodide's WebLoop.create_future adds an "in progress" done callback
        # to each (one more loop callback per message); the reader's task is counted already.
        fut: asyncio.Future[Any] = asyncio.Future(loop=loop)
        if self.ended:
            fut.set_result(_CLOSED)
            return fut
        if timeout is None:
            deadline = math.inf
        else:
            if loop is not self._loop:
                self._loop = loop
                self._now = _loop_clock(loop)
            now = self._now()
            deadline = now + timeout
            if deadline <= now:
                fut.set_exception(TimeoutError())
                return fut
            if deadline < self._timer_at:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer_at = deadline
                self._timer = loop.call_at(deadline, self._expire)
        self._waiters.append((fut, deadline))
        return fut

    def abandon(self, fut: asyncio.Future[Any]) -> None:
        """The reader of ``fut`` stopped waiting (cancelled, timed out): an item already handed
        to it goes back to the front of the queue, so nothing is lost."""
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            item = fut.result()
            if item is not _CLOSED:
                self._items.appendleft(item)
                self._pass_on()
            return
        fut.cancel()
        if any(w[0] is fut for w in self._waiters):
            self._waiters = collections.deque(w for w in self._waiters if w[0] is not fut)

    def _expire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        loop = asyncio.get_running_loop()
        now = loop.time()
        keep: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        earliest = math.inf
        for fut, deadline in self._waiters:
            if fut.done():
                continue
            if deadline <= now:
                fut.set_exception(TimeoutError())
                continue
            keep.append((fut, deadline))
            earliest = min(earliest, deadline)
        self._waiters = keep
        if earliest < math.inf:
            self._timer_at = earliest
            self._timer = loop.call_at(earliest, self._expire)

    async def get(self, timeout: float | None) -> Any:
        if self._items:
            return self._items.popleft()
        fut = self.wait(timeout)
        try:
            return await fut
        except BaseException:
            self.abandon(fut)
            raise


class Ack:
    """The callback an event handler gets when the sender asked for an acknowledgement:
    ``ack(*args)`` answers with any number of arguments (the sender's ``emit_with_ack`` returns
    the one argument, or a tuple of several). Returns a Future, done once the answer is handed
    to the backend (a TCP connection whose peer does not read holds it: it counts against the
    socket's handler bound)."""

    __slots__ = ("_sock", "_dest", "ack_id", "used")

    def __init__(self, sock: "SocketBase", ack_id: int, dest: tuple[Any, ...] = (None, None)) -> None:
        self._sock = sock
        self._dest = dest
        self.ack_id = ack_id
        self.used = False

    def __call__(self, *args: Any) -> asyncio.Future[None]:
        if self.used:
            raise RuntimeError("ack() may be called only once")
        self.used = True
        sock = self._sock
        try:
            fut = sock._write_now(sock._session.ack(self.ack_id, args), self._dest)
        except Exception as exc:
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(exc)
        sock._track(fut, "ack")  # counts against the socket's handler-task bound
        return fut


class SocketBase(EventEmitter):
    """Common machinery. Subclasses provide ``_message_item``/``_message_args``,
    ``_event_extra``, ``_write_now`` and the close path."""

    def __init__(self, session: Session, *, max_queue: int = 1024) -> None:
        super().__init__()
        self._session = session
        # Set by the subclass's open() (UDPSocket: a UdpTransport, TCPSocket: a StreamTransport)
        # before the session opens: the session refuses sends until then.
        self._transport: UdpTransport | StreamTransport | None = None
        self._queue = _Inbox(max_queue)
        self._backlog: collections.deque[tuple[Event, Any]] = collections.deque()
        self.max_queue = max_queue
        # Async handlers (and ack sends) in flight are bounded like the queue: at the bound the
        # socket stops reading, so TCP pushes back on the sender and UDP drops as UDP does.
        self.max_handler_tasks = max_queue
        self._iterating = False
        self._acks: dict[int, tuple[asyncio.Future[Any], str, float | None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed_event = asyncio.Event()
        self.dropped = 0  # datagrams dropped because the backlog was full (UDP only)

    # ---- state (the session owns it)
    @property
    def ready_state(self) -> ReadyState:
        """CONNECTING until ``open()`` succeeds, then OPEN; CLOSING while ``close()`` runs;
        CLOSED at the end (also when ``open()`` failed)."""
        return self._session.ready_state

    @property
    def ack_timeout(self) -> float | None:
        """Seconds ``emit_with_ack`` waits for the ack when given no ``timeout`` (None: no limit).
        Settable; applies to acks asked for afterwards."""
        return self._session.ack_timeout

    @ack_timeout.setter
    def ack_timeout(self, value: float | None) -> None:
        self._session.ack_timeout = value

    def _require_open(self) -> None:
        if self.ready_state is not ReadyState.OPEN:
            raise SocketClosedError(f"socket is {self.ready_state.value}")

    @property
    def closed(self) -> bool:
        """True once the socket is CLOSED."""
        return self.ready_state is ReadyState.CLOSED

    @property
    def close_info(self) -> CloseInfo | None:
        """Why the socket closed (code, reason), once it is closing or closed."""
        return self._session.close_info

    async def wait_closed(self) -> None:
        """Return once the socket is CLOSED (by ``close()``, or by the peer or a lost connection)."""
        await self._closed_event.wait()

    def _sink_namespace(self, **methods: Callable[..., None]) -> types.SimpleNamespace:
        # The backend's sink: bound methods as attributes (no extra call per arrival), kept off
        # the public object so users do not see asyncio-protocol names on their sockets.
        return types.SimpleNamespace(pause_writing=self._pause_writing,
                                     resume_writing=self._resume_writing, **methods)

    # ---- receive path: events from the session, handled now or held in the backlog
    def _feed(self, events: list[Event], ctx: Any = None) -> None:
        backlog = self._backlog
        for ev in events:
            if backlog or not self._has_room(ev):
                backlog.append((ev, ctx))
            else:
                self._process(ev, ctx)
        if backlog and not self._reading_paused:
            self._set_reading(False)

    def _has_room(self, ev: Any) -> bool:
        if len(self._tasks) >= self.max_handler_tasks:
            return False
        if type(ev) is MessageReceived and self._queue.full() and (
                self._iterating or "message" not in self._handlers):
            return False
        return True

    def _drain_backlog(self) -> None:
        backlog = self._backlog
        while backlog and self._has_room(backlog[0][0]):
            ev, ctx = backlog.popleft()
            self._process(ev, ctx)
        if not backlog and self._reading_paused and self.ready_state is ReadyState.OPEN:
            self._set_reading(True)

    def _on_task_room(self) -> None:
        if self._backlog:
            self._drain_backlog()

    def _set_reading(self, on: bool) -> None:
        self._reading_paused = not on
        transport = self._transport
        if transport is not None:
            (transport.resume_reading if on else transport.pause_reading)()

    def _process(self, ev: Any, ctx: Any) -> None:
        kind = type(ev)
        try:
            if kind is MessageReceived:
                has_handlers = self._dispatch("message", *self._message_args(ev, ctx))
                if self._iterating or not has_handlers:
                    self._queue.put_nowait(self._message_item(ev, ctx))
            elif kind is EventReceived:
                ack = Ack(self, ev.ack_id, self._reply_to(ev)) if ev.ack_id else None
                self._dispatch(ev.name, *(ev.args or (None,)), *self._event_extra(ev, ctx), ack)
            elif kind is AckReceived:
                self._resolve_ack(ev.ack_id, ev.value)
            elif kind is ProtocolError:
                self._report(self._annotate_error(ev, ctx))
            elif kind is PeerClosed:
                self._peer_closed(ev)
            elif kind is CloseReceived:
                pass  # the session keeps (code, reason) for the disconnect that follows
        except Exception as exc:  # one input must never stop the socket
            self._report(exc)

    def _message_args(self, ev: MessageReceived, ctx: Any) -> tuple[Any, ...]:
        return (ev.data,)

    def _message_item(self, ev: MessageReceived, ctx: Any) -> Any:
        return ev.data

    def _event_extra(self, ev: EventReceived, ctx: Any) -> tuple[Any, ...]:
        return ()

    def _reply_to(self, ev: EventReceived) -> tuple[Any, ...]:
        return (None, None)

    def _annotate_error(self, ev: ProtocolError, ctx: Any) -> Exception:
        return ev.error

    def _peer_closed(self, ev: PeerClosed) -> None:
        pass

    def _report(self, exc: BaseException) -> None:
        """An ``error`` event for one bad input or failed step; receiving goes on."""
        self._dispatch("error", exc)

    def _stop_receiving(self) -> None:
        """close()/abort(): receiving stops at once; what was not processed is discarded."""
        self._backlog.clear()
        if self._transport is not None and not self._reading_paused:
            self._set_reading(False)

    # ---- the receive queue
    def __aiter__(self) -> Self:
        self._iterating = True
        return self

    async def _next_item(self, timeout: float | None) -> Any:
        queue = self._queue
        if queue._items:                       # fast path: no future, no timer
            item = queue._items.popleft()
        else:
            fut = queue.wait(timeout)
            try:
                item = await fut
            except BaseException:
                queue.abandon(fut)
                raise
        if self._backlog:
            self._drain_backlog()              # room made: take what waited
        return item

    async def __anext__(self) -> Any:
        item = await self._next_item(None)
        if item is _CLOSED:
            raise StopAsyncIteration
        return item

    async def receive(self, timeout: float | None = None) -> Any:
        """Next message (UDP: a Datagram, TCP: bytes). Messages queued before the socket closed
        are still returned; after them it raises SocketClosedError."""
        self._iterating = True
        # _next_item written out here: one coroutine frame fewer to resume per message.
        queue = self._queue
        if queue._items:
            item = queue._items.popleft()
        else:
            fut = queue.wait(timeout)
            try:
                item = await fut
            except BaseException:
                queue.abandon(fut)
                raise
        if self._backlog:
            self._drain_backlog()
        if item is _CLOSED:
            raise SocketClosedError("socket closed")
        return item

    # ---- writing: never blocks in the backend; drain() waits while it says pause
    def _pause_writing(self) -> None:
        self._write_paused = True

    def _resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain(None)

    def _wake_drain(self, exc: BaseException | None) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None) if exc is None else fut.set_exception(exc)

    def _drain_future(self) -> asyncio.Future[None]:
        fut = asyncio.get_running_loop().create_future()
        if self._write_paused:
            self._drain_waiters.append(fut)
        else:
            fut.set_result(None)
        return fut

    async def _drain(self) -> None:
        if self._write_paused:
            await self._drain_future()

    # ---- events and acks
    def _check_event_name(self, event: str) -> None:
        self._session.check_event_name(event)

    def _arm_timer(self) -> None:
        deadline = self._session.next_deadline()
        timer = self._timer
        if timer is not None:
            if deadline is not None and self._timer_when == deadline:
                return
            timer.cancel()
            self._timer = None
        if deadline is not None:
            # (Pyodide's WebLoop returns handles without when(): the deadline is kept here)
            self._timer_when = deadline
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        for ev in self._session.handle_timer(asyncio.get_running_loop().time()):
            # (handle_timer returns AckTimedOut events only; its signature says any Event)
            entry = self._acks.pop(ev.ack_id, None)  # type: ignore[union-attr]
            if entry is not None and not entry[0].done():
                entry[0].set_exception(AckTimeoutError(f"no ack for {ev.event!r} within {entry[2]} s"))  # type: ignore[union-attr]
        self._arm_timer()

    async def _emit_with_ack(self, event: str, args: tuple[Any, ...], timeout: float | None,
                             dest: tuple[Any, ...]) -> Any:
        loop = asyncio.get_running_loop()
        session = self._session
        raw, ack_id = session.emit(event, args, want_ack=True, now=loop.time(), timeout=timeout)
        fut = loop.create_future()
        self._acks[ack_id] = (fut, event, session.ack_timeout if timeout is None else timeout)
        self._arm_timer()
        try:
            await self._write(raw, dest)
            return await fut
        finally:
            session.cancel_ack(ack_id)
            self._acks.pop(ack_id, None)

    def _resolve_ack(self, ack_id: int, payload: Any) -> None:
        entry = self._acks.get(ack_id)
        if entry is not None and not entry[0].done():
            entry[0].set_result(payload)

    def _fail_pending(self) -> None:
        for ev in self._session.terminate():
            if isinstance(ev, AckFailed):
                self._acks.pop(ev.ack_id, None)
        for fut, _, _ in self._acks.values():
            if not fut.done():
                fut.set_exception(SocketClosedError("socket closed before the ack arrived"))
        self._acks.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _write(self, raw: bytes, dest: tuple[Any, ...]) -> None:
        await self._write_now(raw, dest)

    def _write_now(self, raw: bytes, dest: tuple[Any, ...]) -> asyncio.Future[None]:
        raise NotImplementedError

    def _finish_state(self) -> bool:
        """-> CLOSED (once): acks fail, the queue ends, ``close`` handlers get (code, reason).
        Returns False if it was already closed."""
        if self.ready_state is ReadyState.CLOSED:
            return False
        self._fail_pending()  # session.terminate(): the one place CLOSED is entered
        self._backlog.clear()
        self._queue.end()
        self._closed_event.set()
        return True

    if TYPE_CHECKING:  # each subclass defines close (UDP and TCP take the same arguments)
        async def close(self, code: int | None = None, reason: str = "", *,
                        timeout: float | None = None) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def abort(self) -> None:
        """Close at once: see ``close(timeout=0)``."""
        await self.close(timeout=0)

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = ["Ack", "Datagram", "ReadyState", "RemoteInfo", "SocketBase", "CloseInfo",
           "RESERVED_EVENTS", "ack_value"]
