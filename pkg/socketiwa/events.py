"""A small event emitter: ``on``, ``off``, ``once`` and local dispatch.

Handlers may be plain functions or coroutine functions. Like JavaScript listeners, a handler is
called with as many of the event's arguments as it accepts, so ``on("message", lambda data: ...)``
and ``on("message", lambda data, rinfo: ...)`` both work. Parameters with a default value are
left to it (so the loop idiom ``lambda name=name: ...`` keeps its value); ``*args`` takes all.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Callable, Self, TypeVar, overload

log = logging.getLogger("socketiwa")
Handler = Callable[..., Any]
_H = TypeVar("_H", bound=Handler)  # a decorated handler comes back as it went in
_arity_cache: dict[Any, int] = {}


def _arity(fn: Handler) -> int:
    key = getattr(fn, "__func__", fn)
    n = _arity_cache.get(key)
    if n is None:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            n = 1 << 16
        else:
            n = 0
            for p in params:
                if p.kind is p.VAR_POSITIONAL:
                    n = 1 << 16
                    break
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
                    n += 1
        if len(_arity_cache) < 4096:
            _arity_cache[key] = n
    return n


class EventEmitter:
    """Handlers by event name, called in registration order by the object that emits."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[Handler, bool]]] = {}
        # Handler coroutines (tasks) and ack sends (futures) in flight.
        self._tasks: set[asyncio.Future[Any]] = set()
        self._task_room: asyncio.Future[None] | None = None  # woken when a handler task finishes

    @overload
    def on(self, event: str) -> Callable[[_H], _H]: ...
    @overload
    def on(self, event: str, handler: Handler) -> Self: ...

    def on(self, event: str, handler: Handler | None = None) -> Self | Callable[[_H], _H]:
        """Register ``handler`` for ``event``; returns this object, so calls chain. Without a
        handler, returns a decorator: ``@sock.on("message")``."""
        if handler is None:
            def register(fn: _H) -> _H:
                self.on(event, fn)
                return fn
            return register
        self._handlers.setdefault(event, []).append((handler, False))
        return self

    @overload
    def once(self, event: str) -> Callable[[_H], _H]: ...
    @overload
    def once(self, event: str, handler: Handler) -> Self: ...

    def once(self, event: str, handler: Handler | None = None) -> Self | Callable[[_H], _H]:
        """Like ``on``, but the handler is removed before its first call."""
        if handler is None:
            def register(fn: _H) -> _H:
                self.once(event, fn)
                return fn
            return register
        self._handlers.setdefault(event, []).append((handler, True))
        return self

    def off(self, event: str | None = None, handler: Handler | None = None) -> Self:
        """Remove one handler, all handlers of one event, or (no arguments) every handler."""
        if event is None:
            self._handlers.clear()
        elif handler is None:
            self._handlers.pop(event, None)
        else:
            entries = self._handlers.get(event, [])
            for i, (h, _) in enumerate(entries):
                if h == handler:
                    del entries[i]
                    break
            if not entries:
                self._handlers.pop(event, None)
        return self

    def _remove_entry(self, event: str, entry: tuple[Handler, bool]) -> None:
        # By identity: the same function may also be registered with on(), which must stay.
        entries = self._handlers.get(event, [])
        for i, e in enumerate(entries):
            if e is entry:
                del entries[i]
                break
        if not entries:
            self._handlers.pop(event, None)

    def listener_count(self, event: str) -> int:
        """How many handlers ``event`` has."""
        return len(self._handlers.get(event, ()))

    def _dispatch(self, event: str, *args: Any) -> bool:
        """Call the handlers of ``event`` locally. Returns whether any handler ran."""
        entries = self._handlers.get(event)
        if not entries:
            if event == "error" and args:
                log.warning("unhandled socketiwa error: %r", args[0])
            return False
        for entry in list(entries):
            handler, once = entry
            if once:
                self._remove_entry(event, entry)
            try:
                result = handler(*args[: _arity(handler)])
            except Exception as exc:  # a failing handler must not kill the receive loop
                self._handler_failed(event, exc)
                continue
            if inspect.isawaitable(result):
                self._track(asyncio.ensure_future(result), event)
        return True

    def _track(self, task: asyncio.Future[Any], event: str) -> None:
        """Count ``task`` against this emitter's in-flight handler tasks (see wait_task_room)."""
        self._tasks.add(task)
        task.add_done_callback(self._task_done(event))

    def _task_done(self, event: str) -> Callable[[asyncio.Future[Any]], None]:
        def done(task: asyncio.Future[Any]) -> None:
            self._tasks.discard(task)
            room = self._task_room
            if room is not None and not room.done():
                room.set_result(None)
            self._on_task_room()
            exc = None if task.cancelled() else task.exception()
            if exc is not None:
                self._handler_failed(event, exc)
        return done

    def _on_task_room(self) -> None:
        """A handler task finished (subclasses take held-back input here)."""

    async def _wait_task_room(self, limit: int) -> None:
        """Wait until fewer than ``limit`` handler tasks are running. Receive loops call this
        before dispatching, so slow async handlers hold the loop back (bounded memory) instead of
        piling up one task per message."""
        while len(self._tasks) >= limit:
            if self._task_room is None or self._task_room.done():
                self._task_room = asyncio.get_running_loop().create_future()
            await self._task_room

    def _handler_failed(self, event: str, exc: BaseException) -> None:
        if event == "error":
            log.error("error handler failed", exc_info=exc)
        else:
            self._dispatch("error", exc)
