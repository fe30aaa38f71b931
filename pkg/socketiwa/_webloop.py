"""Pyodide's WebLoop, adapted for networking: asyncio's timer semantics, cheap ``call_soon`` and
timers that cost no browser hop per re-arm.

Choose the adaptation with ``socketiwa.configure_webloop(mode)`` (or ``adapt_webloop(mode=)``),
before or after sockets open; the Direct Sockets backend applies the configured mode (default
``"microtask"``) when the first socket opens. Modes:

``"microtask"`` (default, fastest)
    Ready callbacks queue in Python and are drained, in asyncio's FIFO order, in one JavaScript
    microtask right after the JS callback that made them ready (a socket event, a timer): no
    browser task per callback. Timers live in one Python heap behind ONE JS ``setTimeout``,
    re-armed only when the earliest deadline moves earlier, so protocol code that re-arms a
    timer per packet (aioquic's ``call_at``) costs a heap push, not a browser call. Callbacks run
    without JSPI: blocking ``socketiwa.compat`` calls (``run_sync``) raise a clear error inside
    them (top-level code and ``await`` keep working).
``"task"``
    The same queue and timer heap, but each drain is a WebLoop browser task, so callbacks keep
    JSPI (``run_sync`` works in them). One browser hop per batch of callbacks.
``"off"``
    Pyodide's own WebLoop: one browser task (``setTimeout``) per ``call_soon`` and per timer.

In every mode a deadline already in the past runs as soon as possible instead of raising
``ValueError("Can't schedule in the past")`` (WebLoop's behaviour; aioquic re-arms expired
timers and died of it).

Why: WebLoop turns every ``call_soon`` into a browser task (a new once-callable proxy, a
``postMessage`` round trip and, with JSPI, a stack switch): 140-460 us per callback in the IWA,
and one UDP round trip makes several. A drain runs until the queue is empty or a 4 ms budget is
used up; the rest is handed back to the browser as a task so sockets and rendering are not starved.
"""
from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import itertools
import math
import sys
import time
from collections.abc import Callable
from typing import Any, TypeAlias

_BUDGET_S = 0.004
MODES = ("microtask", "task", "off")
DEFAULT_MODE = "microtask"
_TIMER_SLACK_S = 0.001   # setTimeout has 1 ms granularity: run what is due within it
_MAX_TIMEOUT_MS = 2**31 - 1

_configured: str | None = None

# Pyodide's WebLoop (pyodide.webloop: not importable, so not typed, outside Pyodide). socketiwa
# replaces its scheduling methods and keeps its own state on it, so it is handled untyped.
WebLoop: TypeAlias = Any
# WebLoop's own call_later (its one-browser-task scheduling), bound to the loop.
_CallLater: TypeAlias = Callable[..., asyncio.TimerHandle]


def configure_webloop(mode: str) -> str:
    """Set how socketiwa adapts Pyodide's WebLoop ("microtask", "task" or "off"; see the module
    docstring). Applies at once if a WebLoop is running, else when the first socket opens.
    Returns the mode. A no-op outside Pyodide."""
    global _configured
    if mode not in MODES:
        raise ValueError(f"unknown WebLoop mode {mode!r}: expected one of {MODES}")
    _configured = mode
    if sys.platform == "emscripten":  # (a positive check: mypy checks the block with --platform emscripten)
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            return mode
        if type(loop).__name__ == "WebLoop" and getattr(loop, "_socketiwa_mode", None) is not None:
            adapt_webloop(loop, mode)
    return mode


def webloop_mode(loop: asyncio.AbstractEventLoop | None = None) -> str | None:
    """The adaptation in force on ``loop`` (None: not adapted, or not a WebLoop)."""
    loop = loop or asyncio.get_event_loop()
    mode: str | None = getattr(loop, "_socketiwa_mode", None)
    return mode


_new_handle = object.__new__


def _report_callback_error(handle: Any, exc: BaseException) -> None:
    """What asyncio.Handle._run (Python 3.14, Pyodide's) does with a callback's exception: the
    same context dict to the loop's exception handler. (``handle``: an asyncio.Handle, whose
    private slots typeshed does not list.)"""
    from asyncio import format_helpers
    cb = format_helpers._format_callback_source(  # type: ignore[call-arg]  # debug=: Python >= 3.13
        handle._callback, handle._args, debug=handle._loop.get_debug())
    context: dict[str, Any] = {"message": f"Exception in callback {cb}", "exception": exc,
                               "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


class _Batcher:
    """call_soon queue drained in FIFO order, plus a timer heap behind one JS timer."""

    def __init__(self, loop: WebLoop, mode: str, webloop_call_later: _CallLater) -> None:
        import js
        from pyodide.ffi import create_proxy
        self.loop = loop
        self.mode = mode
        self.ready: collections.deque[asyncio.Handle] = collections.deque()
        self.scheduled = False
        # Socket events running now (JS -> Python calls, see directsockets._Endpoint._on_event):
        # in "microtask" mode what they make ready is drained when the outermost one returns,
        # inside the same call, instead of in a microtask scheduled through another JS call.
        self.in_callback = 0
        self.drain_inline = mode == "microtask"
        # Drains running or suspended: a callback that blocks through JSPI (run_sync) suspends
        # its drain mid-queue while the browser keeps running other tasks.
        self.draining = 0
        self.stall_check_pending = False
        # WebLoop's own one-browser-task scheduling (JSPI-capable), bypassing our overrides.
        self.browser_call_soon: Callable[[Callable[[], None]], object] = \
            lambda cb: webloop_call_later(0, cb)
        bridge = js.socketiwaBridge
        self._proxies = [create_proxy(self.drain), create_proxy(self._check_stalled),
                         create_proxy(self._timer_fired)]
        self._microtask_drain = bridge.microtaskScheduler(self._proxies[0]) if mode == "microtask" else None
        self._microtask_stall_check = bridge.microtaskScheduler(self._proxies[1])
        # Timers: (when, seq, TimerHandle) in a heap; one JS timer armed for the earliest.
        self.timers: list[tuple[float, int, asyncio.TimerHandle]] = []
        self._seq = itertools.count()
        self.cancelled = 0
        self.js_timer = bridge.timer(self._proxies[2])
        self._js_arm = self.js_timer.arm   # bound once: called per re-arm
        self.armed_at: float | None = None
        self.timer_arms = 0  # JS timer (re)arms: tests check per-packet re-arms do not cost one

    # ---- call_soon
    def call_soon(self, callback: Callable[..., object], *args: Any,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        loop = self.loop
        if loop._debug:
            handle = asyncio.Handle(callback, args, loop, context=context)
        else:
            # asyncio.Handle.__init__ written out (its slots, as it sets them without debug):
            # two Python calls fewer (the __init__ and loop.get_debug) per wake-up.
            fresh: Any = _new_handle(asyncio.Handle)   # (its slots are not in typeshed)
            handle = fresh
            fresh._callback = callback
            fresh._args = args
            fresh._cancelled = False
            fresh._loop = loop
            fresh._repr = None
            fresh._source_traceback = None
            fresh._context = contextvars.copy_context() if context is None else context
        self.ready.append(handle)
        if self.scheduled:
            pass
        elif not self.draining:
            if not self.in_callback:
                self._schedule(from_drain=False)
            # else the socket event that runs now drains it when it returns (leave_callback)
        elif not self.stall_check_pending:
            # Usually the running drain picks this up. If that drain is suspended instead, the
            # check (a microtask, so it runs once the JS stack has unwound) starts another.
            self.stall_check_pending = True
            self._microtask_stall_check()
        return handle

    def enter_callback(self) -> None:
        """A socket event starts (JS called Python); ``leave_callback`` must follow."""
        if self.drain_inline:
            self.in_callback += 1

    def leave_callback(self) -> None:
        """The socket event returns: run what it made ready now (asyncio FIFO order, the same
        budget as any drain) unless a drain is already running further up the stack."""
        if not self.drain_inline:
            return
        self.in_callback -= 1
        self.drain_if_idle()

    def drain_if_idle(self) -> None:
        """Drain now unless a socket event is still running, a drain is already scheduled, or
        one is running further up the stack (it takes what is queued)."""
        if not self.in_callback and self.ready and not self.scheduled and not self.draining:
            self.drain()

    def _check_stalled(self) -> None:
        self.stall_check_pending = False
        if self.draining and self.ready and not self.scheduled:
            self.scheduled = True
            self.browser_call_soon(self.drain)

    def _schedule(self, from_drain: bool) -> None:
        self.scheduled = True
        if self._microtask_drain is not None and not from_drain:
            self._microtask_drain()
        else:
            # After a full budget, yield to the browser with a real task so I/O gets in.
            self.browser_call_soon(self.drain)

    def drain(self) -> None:
        self.scheduled = False
        self.draining += 1
        loop = self.loop
        # WebLoop._install_running_loop, written out (with stack switching each call may run on
        # a thread state of its own, which must see the loop as running).
        if asyncio._get_running_loop() is not loop:
            asyncio._set_running_loop(loop)
        ready = self.ready
        deadline = time.perf_counter() + _BUDGET_S
        try:
            while ready:
                handle: Any = ready.popleft()   # (Handle's private slots: not in typeshed)
                if not handle._cancelled:
                    # Handle._run written out (one Python frame fewer per callback); an
                    # exception goes to the loop's handler exactly as Handle._run reports it.
                    try:
                        handle._context.run(handle._callback, *handle._args)
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        _report_callback_error(handle, exc)
                if time.perf_counter() > deadline:
                    break
        finally:
            self.draining -= 1
            if ready and not self.scheduled:
                self._schedule(from_drain=True)

    # ---- timers
    def call_at(self, when: float, callback: Callable[..., object], *args: Any,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(when, callback, args, self.loop, context=context)
        if when == math.inf:
            return handle
        handle._scheduled = True  # type: ignore[attr-defined]  # private, not in typeshed: cancel() tells the loop
        heapq.heappush(self.timers, (when, next(self._seq), handle))
        # Re-arm only for a deadline clearly earlier: setTimeout has 1 ms granularity anyway, and
        # a re-arm is a JS call (aioquic moves its timer a little earlier many times a second).
        if self.armed_at is None or when < self.armed_at - _TIMER_SLACK_S:
            self._arm(when)
        return handle

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any,
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        return self.call_at(self.loop.time() + max(delay, 0), callback, *args, context=context)

    def timer_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self.cancelled += 1
        # Per-packet re-arms cancel a lot: drop cancelled entries once they are most of the heap.
        if self.cancelled > 64 and self.cancelled * 2 > len(self.timers):
            self.timers = [t for t in self.timers if not t[2]._cancelled]
            heapq.heapify(self.timers)
            self.cancelled = 0

    def _arm(self, when: float) -> None:
        self.armed_at = when
        self.timer_arms += 1
        ms = max(0.0, (when - self.loop.time()) * 1000)
        self._js_arm(min(ms, _MAX_TIMEOUT_MS))

    def _timer_fired(self) -> None:
        self.armed_at = None
        timers = self.timers
        now = self.loop.time() + _TIMER_SLACK_S
        due = False
        while timers and (timers[0][2]._cancelled or timers[0][0] <= now):
            _, _, handle = heapq.heappop(timers)
            if handle._cancelled:
                self.cancelled = max(0, self.cancelled - 1)
                continue
            handle._scheduled = False  # type: ignore[attr-defined]  # (as in call_at)
            self.ready.append(handle)
            due = True
        if timers:
            self._arm(timers[0][0])
        if due and not self.scheduled:
            if self.mode == "microtask" and not self.draining:
                self.drain()           # already in a JS task: run now
            else:
                self._schedule(from_drain=True)


def _clamp_past_deadlines(loop: WebLoop, webloop_call_later: _CallLater) -> None:
    def call_later(delay: float, callback: Callable[..., object], *args: Any,
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        return webloop_call_later(max(delay, 0), callback, *args, context=context)

    def call_at(when: float, callback: Callable[..., object], *args: Any,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        return webloop_call_later(max(when - loop.time(), 0), callback, *args, context=context)

    loop.call_later = call_later
    loop.call_at = call_at


_OVERRIDDEN = ("call_soon", "call_soon_threadsafe", "call_later", "call_at", "_timer_handle_cancelled")


def _restore(loop: WebLoop) -> None:
    batcher = getattr(loop, "_socketiwa_batcher", None)
    for attr in _OVERRIDDEN:
        loop.__dict__.pop(attr, None)
    loop._socketiwa_batcher = None
    loop._socketiwa_mode = None
    if batcher is not None:
        # Hand what is still queued to the new scheduling, in order.
        batcher.js_timer.cancel()
        pending = list(batcher.ready)
        timers = [t for t in batcher.timers if not t[2]._cancelled]
        batcher.ready.clear()
        batcher.timers = []
        # Its proxies stay alive: a drain or check it already queued (this switch may run inside
        # its own drain) must find an empty queue, not a destroyed function. Three per switch.
        loop._socketiwa_handover = (pending, timers)


def adapt_webloop(loop: WebLoop = None, mode: str | None = None) -> str:
    """Adapt Pyodide's WebLoop (other loops are left alone and "off" is returned). ``mode``
    overrides the configured one (configure_webloop; default "microtask"); calling again with
    another mode switches, keeping queued callbacks and timers. ``loop``: the current event loop
    if not given. Returns the mode in force."""
    loop = loop or asyncio.get_event_loop()
    if type(loop).__name__ != "WebLoop":
        return "off"
    mode = mode or _configured or DEFAULT_MODE
    if mode not in MODES:
        raise ValueError(f"unknown WebLoop mode {mode!r}: expected one of {MODES}")
    current: str | None = getattr(loop, "_socketiwa_mode", None)
    if current == mode:
        return current
    if current is not None:
        _restore(loop)
    webloop_call_later = type(loop).call_later.__get__(loop)
    import js
    if mode != "off" and not hasattr(getattr(js, "socketiwaBridge", None), "timer"):
        # Without socketiwa's adapter there is no microtask or timer hook: WebLoop's own.
        mode = "off"
    handover = loop.__dict__.pop("_socketiwa_handover", ([], []))
    loop._socketiwa_mode = mode
    if mode == "off":
        _clamp_past_deadlines(loop, webloop_call_later)
        def run(handle: asyncio.Handle) -> None:
            if not handle._cancelled:
                handle._run()
        for handle in handover[0]:
            webloop_call_later(0, run, handle)
        for when, _, handle in handover[1]:
            webloop_call_later(max(when - loop.time(), 0), run, handle)
        return mode
    batcher = _Batcher(loop, mode, webloop_call_later)
    loop._socketiwa_batcher = batcher
    loop.call_soon = batcher.call_soon
    loop.call_soon_threadsafe = batcher.call_soon
    loop.call_at = batcher.call_at
    loop.call_later = batcher.call_later
    loop._timer_handle_cancelled = batcher.timer_cancelled
    for handle in handover[0]:
        batcher.ready.append(handle)
    for when, _, handle in handover[1]:
        heapq.heappush(batcher.timers, (when, next(batcher._seq), handle))
    if batcher.ready:
        batcher._schedule(from_drain=True)
    if batcher.timers:
        batcher._arm(batcher.timers[0][0])
    return mode
