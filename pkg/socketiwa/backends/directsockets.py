"""Pyodide backend: Chrome's Direct Sockets through the JS adapter (bridge/adapter.mjs), push model.

The page sets ``globalThis.socketiwaBridge = createBridge()``. JS owns every socket's receive
loop and calls one long-lived Python function per socket (``_Endpoint._on_event``, made a proxy
once in ``start`` and destroyed when the socket ends) with plain ints: no JS promise is awaited
per packet. Received bytes arrive in a Python-owned buffer in wasm memory (UDP: every datagram
already queued, in one call); sends are copied into a Python-owned region that JS copies out and
writes without Python awaiting. The call protocol is described at the top of bridge/adapter.mjs.

Sink methods (base.py's push interface) run inside those calls; an exception in one goes to the
loop's exception handler and delivery goes on.
"""
from __future__ import annotations

import asyncio
import json
import struct
from typing import Any, Generic, TypeVar

import js
from pyodide.ffi import JsException, create_proxy, to_js

from .._webloop import adapt_webloop
from ..errors import (ConnectError, InvalidOptionError, MessageTooLargeError, NotSupportedError,
                      PermissionDeniedError, SocketClosedError, SocketIwaError)
from .base import (MAX_UDP_PAYLOAD, AcceptSink, DatagramSink, Endpoints, PermissionState,
                   StreamSink, TcpOptions, UdpOptions)

name = "directsockets"

# The JS -> Python events (bridge/adapter.mjs EV_*).
EV_DATA, EV_EOF, EV_ERROR, EV_RESUME_WRITING, EV_WRITE_ERROR, EV_ACCEPT = range(6)

_UDP_HEAD = struct.Struct("<IHB")   # length, port, address length (then address, data)
_RECV_BYTES = 256 * 1024            # one delivery: a batch of datagrams, or a piece of a stream
_SEND_BYTES = 64 * 1024             # >= MAX_UDP_PAYLOAD; larger TCP writes go as one JS array

# DOMException names Chromium's Direct Sockets raise, mapped to socketiwa's errors.
_ERRORS: dict[str, type[SocketIwaError]] = {
    "NotAllowedError": PermissionDeniedError,
    "SecurityError": PermissionDeniedError,
    "NetworkError": ConnectError,
    "InvalidStateError": SocketClosedError,
    "TypeError": InvalidOptionError,
    # Chromium 156 uses it for Local Network Access refusals ("Access to local network is
    # blocked."): the loopback-network / local-network permission is not granted.
    "InvalidAccessError": PermissionDeniedError,
    "NotSupportedError": NotSupportedError,
}


def _make_error(js_name: str, message: str, what: str) -> SocketIwaError:
    cls = _ERRORS.get(js_name, ConnectError)
    err = cls(f"{what}: {js_name}: {message}")
    err.js_name = js_name
    return err


def _error(exc: BaseException, what: str) -> SocketIwaError:
    js_name = getattr(exc, "name", "") or type(exc).__name__
    message = getattr(exc, "message", "") or str(exc)
    return _make_error(js_name, message, what)


class _Memory:
    """The receive buffer and send region in wasm memory, shared by every socket (a delivery is
    copied out before the sink call returns; a send is copied out by JS before sendFrom returns)."""

    def __init__(self, bridge: Any) -> None:
        self.recv = bytearray(_RECV_BYTES)
        self.send = bytearray(_SEND_BYTES)
        # Exported views pin both bytearrays (they can never be resized or moved).
        self.recv_view = memoryview(self.recv)
        self.send_view = memoryview(self.send)
        self._proxies = [create_proxy(self.recv), create_proxy(self.send)]
        bridge.attachMemory(*self._proxies)


_memory: _Memory | None = None  # set by _bridge(), before any socket opens: used unchecked
live_proxies = 0  # sink proxies alive now (tests check that closed sockets release theirs)
_event_depth = 0  # socket events (JS -> Python calls) running now, nested included


def _bridge() -> Any:
    """The page's socketiwaBridge (a JsProxy: bridge/adapter.mjs). The first call sets up _memory."""
    global _memory
    bridge = getattr(js, "socketiwaBridge", None)
    if bridge is None or not hasattr(bridge, "attachMemory"):
        raise NotSupportedError(
            "socketiwa's JS adapter is not loaded: the page must import bridge/adapter.mjs "
            "(version 2) and set globalThis.socketiwaBridge = createBridge()")
    if _memory is None:
        # Every socket event wakes asyncio callbacks: schedule them cheaply (see _webloop.py).
        adapt_webloop()
        _memory = _Memory(bridge)
    return bridge


def _endpoints(handle: Any) -> Endpoints:
    return Endpoints(**json.loads(handle.infoJson))


def _options_json(opts: UdpOptions | TcpOptions, names: tuple[str, ...]) -> str:
    return json.dumps({k: getattr(opts, k) for k in names if getattr(opts, k) is not None})


# The sink a transport pushes to (base.py's push interface): one kind per transport class.
_SinkT = TypeVar("_SinkT", DatagramSink, StreamSink, AcceptSink)


class _Endpoint(Generic[_SinkT]):
    """What UDP, TCP and server transports share: the sink proxy, pause/resume, the end.
    ``handle`` is the JS adapter's handle for the socket (a JsProxy)."""

    _what = "socket"

    def __init__(self, handle: Any) -> None:
        global live_proxies
        self._h = handle
        self._loop = asyncio.get_running_loop()
        self.endpoints = _endpoints(handle)
        self._sink: _SinkT | None = None
        self._started = False
        self._lost = False
        self._closed = False            # close()/abort() called
        self._writing_paused = False    # JS said the send queue is full
        self._pause_delivered = False   # ... and the sink was told
        self._send_error: BaseException | None = None
        # The one JS -> Python entry for this socket, for its whole life (destroyed in _finish).
        self._proxy = create_proxy(self._on_event)
        live_proxies += 1
        handle.attach(self._proxy)

    # ---- receiving
    def start(self, sink: _SinkT) -> None:
        """Begin delivering to ``sink`` (once): JS starts this socket's receive loop."""
        if self._started:
            raise RuntimeError("start() may be called once")
        if self._lost or self._closed:
            raise SocketClosedError(f"{self._what} closed")
        self._started = True
        self._sink = sink
        self._h.start()

    def pause_reading(self) -> None:
        """Stop this socket's JS receive loop (idempotent); Chromium's buffer then fills."""
        self._h.pause()

    def resume_reading(self) -> None:
        """Restart the JS receive loop (idempotent)."""
        self._h.resume()

    def _on_event(self, kind: int, a: Any, b: int) -> None:
        global _event_depth
        loop = self._loop
        if asyncio._get_running_loop() is not loop:  # a JS callback may find no running loop
            asyncio._set_running_loop(loop)
        if self._lost:
            return
        # socketiwa's WebLoop batcher ("microtask" mode) runs what this event makes ready (a
        # woken receive(), done callbacks) right here when it returns: no JS round trip to
        # schedule a microtask and be called back (see _webloop._Batcher.leave_callback).
        batcher = getattr(loop, "_socketiwa_batcher", None)
        _event_depth += 1
        if batcher is not None and batcher.drain_inline:
            batcher.in_callback += 1          # batcher.enter_callback(), one call fewer
        try:
            self._event(kind, a, b)
        except Exception as exc:  # a bug here must not stop the JS pump
            self._report("socketiwa: socket event failed", exc)
        finally:
            try:
                if batcher is not None and batcher.drain_inline:
                    batcher.in_callback -= 1      # batcher.leave_callback(), written out:
                    # no call at all when nothing became ready (drain_if_idle's test, inline)
                    if (batcher.ready and not batcher.in_callback and not batcher.scheduled
                            and not batcher.draining):
                        batcher.drain()
            finally:
                _event_depth -= 1

    def _event(self, kind: int, a: Any, b: int) -> None:  # pragma: no cover - per kind
        raise NotImplementedError

    def _report(self, message: str, exc: BaseException) -> None:
        self._loop.call_exception_handler({"message": message, "exception": exc, "transport": self})

    def _call_sink(self, method: str, *args: Any) -> None:
        if self._sink is None:
            return
        try:
            getattr(self._sink, method)(*args)
        except Exception as exc:
            self._report(f"socketiwa: exception in {type(self._sink).__name__}.{method}", exc)

    def _handle_error(self, what: str) -> SocketIwaError:
        return _make_error(str(self._h.errorName), str(self._h.errorMessage), what)

    # ---- writing
    def _request_pause(self) -> None:
        # From inside send()/write(), as asyncio's own transports do (and native.py, which passes
        # asyncio's through): a writer that never yields must see the pause before its next write.
        self._writing_paused = True
        if not self._lost and self._sink is not None:
            self._pause_delivered = True
            self._call_sink("pause_writing")

    def _resumed(self) -> None:
        self._writing_paused = False
        if self._pause_delivered:
            self._pause_delivered = False
            self._call_sink("resume_writing")

    # ---- the end
    def _finish(self, exc: Exception | None) -> None:
        """connection_lost(exc) exactly once, last; release the JS side and the proxy."""
        global live_proxies
        if self._lost:
            return
        self._lost = True
        self._h.detach()
        sink, self._sink = self._sink, None
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            live_proxies -= 1
            # Never inside its own call: inside a socket event (or the callbacks it runs on
            # return) wait for a timer turn, else the next loop turn.
            if _event_depth:
                self._loop.call_later(0, proxy.destroy)
            else:
                self._loop.call_soon(proxy.destroy)
        if sink is not None:
            try:
                sink.connection_lost(exc)
            except Exception as e:
                self._report(f"socketiwa: exception in {type(sink).__name__}.connection_lost", e)


class DirectUdp(_Endpoint[DatagramSink]):
    """A UdpTransport over Chromium's UDPSocket (connected or bound mode)."""

    _what = "UDP socket"

    def __init__(self, handle: Any, opts: UdpOptions) -> None:
        super().__init__(handle)
        self._connected = handle.connected
        self._remote = self.endpoints.remote_address or ""
        self._remote_port = self.endpoints.remote_port or 0
        # Bound once: a JsProxy attribute lookup per datagram costs more than the call.
        self._send_from = handle.sendFrom
        self._send_to = handle.sendTo
        self._addresses: dict[bytes, str] = {}
        self._groups: list[tuple[str, str | None, str | None]] = []

    def _event(self, kind: int, a: Any, b: int) -> None:
        if kind == EV_DATA:
            view = _memory.recv_view  # type: ignore[union-attr]  # see _memory
            head = _UDP_HEAD.unpack_from
            sink = self._sink
            pos = 0
            for _ in range(a):
                length, port, alen = head(view, pos)
                pos += 7
                if alen:
                    raw = view[pos:pos + alen].tobytes()
                    address = self._addresses.get(raw)
                    if address is None:
                        address = raw.decode("ascii")
                        if len(self._addresses) < 1024:
                            self._addresses[raw] = address
                    pos += alen
                else:
                    address, port = self._remote, self._remote_port
                data = view[pos:pos + length].tobytes()
                pos += length
                try:
                    sink.datagram_received(data, address, port)  # type: ignore[union-attr]  # start() set it before JS delivers
                except Exception as exc:
                    self._report(f"socketiwa: exception in {type(sink).__name__}.datagram_received", exc)
                if self._lost:
                    return
        elif kind == EV_RESUME_WRITING:
            self._resumed()
        elif kind == EV_WRITE_ERROR:
            err = self._handle_error("UDP send failed")
            self._send_error = err
            self._call_sink("error_received", err)
        elif kind == EV_EOF:
            self._finish(None)
        elif kind == EV_ERROR:
            self._finish(self._handle_error("UDP receive failed"))

    def send(self, data: bytes, address: str | None = None, port: int | None = None) -> None:
        """Queue one datagram; never blocks (pause_writing() says when to stop)."""
        if self._closed or self._lost:
            raise SocketClosedError("UDP socket closed")
        if self._send_error is not None:
            err, self._send_error = self._send_error, None
            raise err
        n = len(data)
        if n > MAX_UDP_PAYLOAD:
            raise MessageTooLargeError(f"datagram of {n} bytes exceeds {MAX_UDP_PAYLOAD}")
        if n == 0:
            raise NotSupportedError("empty datagrams are refused by Chromium's UDPSocket")
        _memory.send_view[:n] = data  # type: ignore[union-attr]  # see _memory
        try:
            if address is None or self._connected:
                full = self._send_from(n)
            else:
                full = self._send_to(n, address, port)
        except JsException as e:
            raise _error(e, "UDP send failed") from None
        if full and not self._writing_paused:
            self._request_pause()

    def get_write_buffer_size(self) -> int:
        """Bytes handed to send() that the UDPSocket has not taken yet."""
        return int(self._h.pendingBytes)

    async def close(self) -> None:
        """Close the UDPSocket (JS releases its reader and writer), then connection_lost(None).
        Raises the mapped error if Chromium's close fails (connection_lost has run by then)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._h.close()
        except JsException as e:
            self._finish(None)
            raise _error(e, "UDP close failed") from None
        self._finish(None)

    async def join_group(self, group: str, interface: str | None = None,
                         source: str | None = None) -> None:
        """Join ``group`` through the socket's MulticastController. ``interface`` and
        ``source`` raise NotSupportedError; so does a socket without a controller."""
        # MulticastController is joinGroup(ipAddress) only: the OS picks the interface, and there
        # is no source-specific membership. Refuse rather than join a wider group than asked.
        if interface is not None:
            raise NotSupportedError("Direct Sockets' MulticastController cannot choose an interface")
        if source is not None:
            raise NotSupportedError("Direct Sockets' MulticastController has no source-specific "
                                    "membership (joinGroup(ipAddress) only)")
        try:
            await self._h.join(group)
        except JsException as e:
            raise _error(e, f"cannot join {group}") from None
        self._groups.append((group, interface, source))

    async def leave_group(self, group: str, interface: str | None = None,
                          source: str | None = None) -> None:
        """Leave ``group`` (``interface``/``source``: NotSupportedError, as in join_group)."""
        if interface is not None or source is not None:
            raise NotSupportedError("Direct Sockets has no interface or source-specific membership")
        try:
            await self._h.leave(group)
        except JsException as e:
            raise _error(e, f"cannot leave {group}") from None
        if (group, interface, source) in self._groups:
            self._groups.remove((group, interface, source))

    def joined_groups(self) -> list[str]:
        """The groups the MulticastController reports joined (empty without one)."""
        groups: list[str] = json.loads(self._h.joined())
        return groups

    def set_multicast_ttl(self, ttl: int) -> None:
        """Always NotSupportedError: Direct Sockets fixes the TTL at open."""
        raise NotSupportedError(
            "Direct Sockets fixes the multicast TTL when the socket opens: pass "
            "multicast_time_to_live= to create_multicast_socket")

    def set_multicast_loopback(self, flag: bool) -> None:
        """Always NotSupportedError: Direct Sockets fixes loopback at open."""
        raise NotSupportedError(
            "Direct Sockets fixes multicast loopback when the socket opens: pass "
            "multicast_loopback= to create_multicast_socket")



async def open_udp(opts: UdpOptions) -> DirectUdp:
    """Open a UDPSocket with ``opts``; Chromium's refusals come back as socketiwa errors
    (PermissionDeniedError, ConnectError, InvalidOptionError, ...)."""
    fields = ("local_address", "local_port", "remote_address", "remote_port", "send_buffer_size",
              "receive_buffer_size", "dns_query_type", "ipv6_only", "multicast_time_to_live",
              "multicast_loopback", "multicast_allow_address_sharing")
    try:
        handle = await _bridge().openUdp(_options_json(opts, fields))
    except JsException as e:
        raise _error(e, "cannot open UDP socket") from None
    return DirectUdp(handle, opts)


class DirectStream(_Endpoint[StreamSink]):
    """A StreamTransport over Chromium's TCPSocket (opened, or accepted by a DirectServer)."""

    _what = "TCP connection"

    def __init__(self, handle: Any) -> None:
        super().__init__(handle)
        self._write_from = handle.writeFrom

    def _event(self, kind: int, a: Any, b: int) -> None:
        if kind == EV_DATA:
            data = _memory.recv_view[:a].tobytes()  # type: ignore[union-attr]  # see _memory
            self._call_sink("data_received", data)
        elif kind == EV_RESUME_WRITING:
            self._resumed()
        elif kind == EV_EOF:
            self._call_sink("eof_received")
        elif kind in (EV_ERROR, EV_WRITE_ERROR):
            err = self._handle_error("connection lost")
            self._closed = True
            self._h.abort()
            self._finish(err)

    def write(self, data: bytes) -> None:
        """Queue ``data``; never blocks (pause_writing() says when to stop)."""
        if self._closed or self._lost:
            raise SocketClosedError("TCP connection closed")
        n = len(data)
        if n == 0:
            return
        try:
            if n <= _SEND_BYTES:
                _memory.send_view[:n] = data  # type: ignore[union-attr]  # see _memory
                full = self._write_from(n)
            else:
                full = self._h.writeArray(to_js(data if isinstance(data, bytes) else bytes(data)))
        except JsException as e:
            raise SocketClosedError(f"TCP write failed: {getattr(e, 'name', '')}: {e}") from None
        if full and not self._writing_paused:
            self._request_pause()

    def get_write_buffer_size(self) -> int:
        """Bytes handed to write() and not yet written to the TCPSocket."""
        return int(self._h.queuedBytes())

    async def close(self) -> None:
        """Flush (every queued byte is written, checked against Chromium's write loss), then
        close; see TcpHandle.close in bridge/adapter.mjs."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._h.close()
        except JsException:
            pass  # the peer may already have reset the connection; it is closed either way
        self._finish(None)

    def abort(self) -> None:
        """Close now: queued bytes are discarded; connection_lost follows on the next turn."""
        if self._closed:
            return
        self._closed = True
        self._h.abort()
        self._loop.call_soon(self._finish, None)



async def open_tcp(host: str, port: int, opts: TcpOptions) -> DirectStream:
    """Connect a TCPSocket to ``host``:``port``; failures come back as socketiwa errors."""
    fields = ("no_delay", "keep_alive_delay", "send_buffer_size", "receive_buffer_size",
              "dns_query_type")
    try:
        handle = await _bridge().openTcp(host, port, _options_json(opts, fields))
    except JsException as e:
        raise _error(e, f"cannot connect to {host}:{port}") from None
    return DirectStream(handle)


class DirectServer(_Endpoint[AcceptSink]):
    """A ServerTransport over Chromium's TCPServerSocket: each accepted connection goes to the
    sink's connection_made as a DirectStream."""

    _what = "TCP server"

    def __init__(self, handle: Any) -> None:
        super().__init__(handle)

    def _event(self, kind: int, a: Any, b: int) -> None:
        if kind == EV_ACCEPT:
            stream = DirectStream(a)
            try:
                self._sink.connection_made(stream)  # type: ignore[union-attr]  # start() set it before JS delivers
            except Exception as exc:
                self._report(f"socketiwa: exception in {type(self._sink).__name__}.connection_made", exc)
                stream.abort()
        elif kind == EV_EOF:
            self._finish(None)
        elif kind == EV_ERROR:
            self._finish(self._handle_error("accept failed"))

    async def close(self) -> None:
        """Stop listening (accepted connections are their owners' to close), then connection_lost(None)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._h.close()
        except JsException:
            pass
        self._finish(None)



async def open_tcp_server(host: str, port: int, backlog: int | None, ipv6_only: bool | None) -> DirectServer:
    """Listen on ``host``:``port`` (0: any free port) with a TCPServerSocket."""
    options = json.dumps({"local_port": port or None, "backlog": backlog, "ipv6_only": ipv6_only})
    try:
        handle = await _bridge().openTcpServer(host, options)
    except JsException as e:
        raise _error(e, f"cannot listen on {host}:{port}") from None
    return DirectServer(handle)


async def permissions() -> PermissionState:
    """What the page may do: Direct Sockets (and multicast) policies and the local/loopback
    network permission states, as the JS adapter reports them (``details``: its raw answer)."""
    raw = json.loads(await _bridge().permissions())
    return PermissionState(bool(raw.get("directSockets")), bool(raw.get("directSocketsMulticast")),
                           str(raw.get("localNetwork", "unsupported")),
                           str(raw.get("loopbackNetwork", "unsupported")), raw)
