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
from typing import Any, Callable

log = logging.getLogger("socketiwa")
Handler = Callable[..., Any]
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
    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[Handler, bool]]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._task_room: asyncio.Future | None = None  # woken when a handler task finishes

    def on(self, event: str, handler: Handler | None = None):
        """Register ``handler`` for ``event``. Usable as a decorator: ``@sock.on("message")``."""
        if handler is None:
            return lambda fn: self.on(event, fn) and fn
        self._handlers.setdefault(event, []).append((handler, False))
        return self

    def once(self, event: str, handler: Handler | None = None):
        if handler is None:
            return lambda fn: self.once(event, fn) and fn
        self._handlers.setdefault(event, []).append((handler, True))
        return self

    def off(self, event: str | None = None, handler: Handler | None = None):
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

    def _track(self, task: asyncio.Future, event: str) -> None:
        """Count ``task`` against this emitter's in-flight handler tasks (see wait_task_room)."""
        self._tasks.add(task)
        task.add_done_callback(self._task_done(event))

    def _task_done(self, event: str):
        def done(task: asyncio.Future) -> None:
            self._tasks.discard(task)
            room = self._task_room
            if room is not None and not room.done():
                room.set_result(None)
            self._on_task_room()
            if not task.cancelled() and task.exception() is not None:
                self._handler_failed(event, task.exception())
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
