"""Pyodide's WebLoop, adapted for networking: asyncio's timer semantics and cheaper ``call_soon``.

WebLoop's ``call_at``/``call_later`` raise ``ValueError("Can't schedule in the past")`` for a
deadline already passed, where asyncio runs the callback as soon as possible. Protocol code
relies on that (aioquic re-arms its loss-detection timer with deadlines that have just expired,
and the error killed QUIC transfers after a few packets), so past deadlines are clamped to now.

WebLoop turns every ``call_soon`` into its own browser task: a new once-callable proxy, a
``postMessage`` round trip and, where JSPI exists (the IWA), a second hop plus a stack switch
so the callback may block with ``run_sync``. Measured in the IWA that is 140-460 us per
callback, and a single UDP round trip costs several (task wake-up, send flush, timeouts).

``adapt_webloop(loop)`` keeps asyncio's order and cancellation but queues ready callbacks in
Python and drains them all in one scheduled turn, so a burst of N callbacks pays the browser
hop once instead of N times. Mode "task" schedules that turn with WebLoop's own ``call_soon``
(so callbacks keep JSPI and ``run_sync`` works inside them); mode "microtask" runs the drain as
a JavaScript microtask right after the current JS callback, which is much cheaper but runs
without JSPI (blocking ``socketiwa.compat`` calls then raise a clear error).

The drain runs until the queue is empty or a time budget is used up; leftover work is handed
back to the browser as a task so socket events and rendering are never starved.
"""
from __future__ import annotations

import asyncio
import collections
import os
import time

_BUDGET_S = 0.004
_MODES = ("task", "microtask", "off")


class _Batcher:
    def __init__(self, loop, mode: str):
        import js  # type: ignore[import-not-found]
        from pyodide.ffi import create_proxy  # type: ignore[import-not-found]
        self.loop = loop
        self.mode = mode
        self.ready: collections.deque[asyncio.Handle] = collections.deque()
        self.scheduled = False
        # Drains running or suspended: a callback that blocks through JSPI (run_sync) suspends
        # its drain mid-queue while the browser keeps running other tasks.
        self.draining = 0
        self.stall_check_pending = False
        self.browser_call_soon = loop.call_soon  # WebLoop's own: one browser task per call
        # One proxy and one JS closure each for the loop's lifetime: scheduling is one call.
        microtask = js.socketiwaBridge.microtaskScheduler
        self._proxies = [create_proxy(self.drain), create_proxy(self._check_stalled)]
        self._microtask_drain = microtask(self._proxies[0]) if mode == "microtask" else None
        self._microtask_stall_check = microtask(self._proxies[1])

    def call_soon(self, callback, *args, context=None):
        handle = asyncio.Handle(callback, args, self.loop, context=context)
        self.ready.append(handle)
        if self.scheduled:
            pass
        elif not self.draining:
            self._schedule(from_drain=False)
        elif not self.stall_check_pending:
            # Usually the running drain picks this up. If that drain is suspended instead, the
            # check (a microtask, so it runs once the JS stack has unwound) starts another.
            self.stall_check_pending = True
            self._microtask_stall_check()
        return handle

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
        ready = self.ready
        deadline = time.perf_counter() + _BUDGET_S
        try:
            while ready:
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()  # Handle._run reports exceptions to the loop's handler
                if time.perf_counter() > deadline:
                    break
        finally:
            self.draining -= 1
            if ready and not self.scheduled:
                self._schedule(from_drain=True)


def _clamp_past_deadlines(loop) -> None:
    webloop_call_later = loop.call_later

    def call_later(delay, callback, *args, context=None):
        return webloop_call_later(max(delay, 0), callback, *args, context=context)

    def call_at(when, callback, *args, context=None):
        return webloop_call_later(max(when - loop.time(), 0), callback, *args, context=context)

    loop.call_later = call_later
    loop.call_at = call_at


def adapt_webloop(loop=None, mode: str | None = None) -> str:
    """Adapt Pyodide's WebLoop (idempotent; other loops are left alone). Returns the call_soon
    mode in use: $SOCKETIWA_WEBLOOP or "off" by default; "off" keeps WebLoop's own call_soon
    (past deadlines are clamped in every mode)."""
    loop = loop or asyncio.get_event_loop()
    if type(loop).__name__ != "WebLoop":
        return "off"
    current = getattr(loop, "_socketiwa_mode", None)
    if current is not None:
        return current
    # "off" by default: batching passed every test here but two CI runs on a clean clone hung
    # in QUIC/aio tests with it on, cause not found yet; opt in with SOCKETIWA_WEBLOOP.
    mode = mode or os.environ.get("SOCKETIWA_WEBLOOP", "off")
    if mode not in _MODES:
        raise ValueError(f"unknown WebLoop mode {mode!r}: expected one of {_MODES}")
    _clamp_past_deadlines(loop)
    loop._socketiwa_mode = mode
    if mode == "off":
        return mode
    import js  # type: ignore[import-not-found]
    if not hasattr(getattr(js, "socketiwaBridge", None), "microtaskScheduler"):
        # Without socketiwa's adapter there is no cheap microtask hook to detect a drain
        # suspended by JSPI, so batching could stall: keep WebLoop's own call_soon.
        loop._socketiwa_mode = "off"
        return "off"
    batcher = _Batcher(loop, mode)
    loop._socketiwa_mode = batcher.mode
    loop.call_soon = batcher.call_soon
    loop.call_soon_threadsafe = batcher.call_soon
    return mode
