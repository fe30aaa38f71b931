"""Pyodide backend: Chrome's Direct Sockets through the JS adapter (bridge/adapter.mjs).

The page sets ``globalThis.socketiwaBridge = createBridge()``. Each call here crosses the FFI
once and moves whole batches: received datagrams arrive packed in one Uint8Array (copied once by
``to_bytes``), and datagrams sent in the same event-loop turn leave in one packed call.

This is the *transitional* push adapter for base.py's interface over the JS handles' pull API
(a pump task per socket); the push-native version (JS calls the sinks) replaces it.
"""
from __future__ import annotations

import asyncio
import json
import struct

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, to_js  # type: ignore[import-not-found]

from .._webloop import adapt_webloop
from ..errors import (ConnectError, InvalidOptionError, MessageTooLargeError, NotSupportedError,
                      PermissionDeniedError, SocketClosedError, SocketIwaError)
from .base import MAX_UDP_PAYLOAD, Endpoints, PermissionState, TcpOptions, UdpOptions

name = "directsockets"
_UDP_HEAD = struct.Struct("!IHB")
_SEND_HIGH_WATER = 2 << 20  # what the JS handle holds before its write() asks to wait

# DOMException names Chromium's Direct Sockets raise, mapped to socketiwa's errors.
_ERRORS = {
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


def _error(exc: BaseException, what: str) -> SocketIwaError:
    js_name = getattr(exc, "name", "") or type(exc).__name__
    message = getattr(exc, "message", "") or str(exc)
    cls = _ERRORS.get(js_name, ConnectError)
    err = cls(f"{what}: {js_name}: {message}")
    err.js_name = js_name
    return err


def _bridge():
    bridge = getattr(js, "socketiwaBridge", None)
    if bridge is None:
        raise NotSupportedError(
            "socketiwa's JS adapter is not loaded: the page must import bridge/adapter.mjs and set "
            "globalThis.socketiwaBridge = createBridge()")
    # Every socket wakes the loop per message; batch those wake-ups (see _webloop.py).
    adapt_webloop()
    return bridge


def _endpoints(handle) -> Endpoints:
    return Endpoints(**json.loads(handle.infoJson))


def _unpack_udp(buf: bytes) -> list[tuple[bytes, str, int]]:
    out = []
    pos, end = 0, len(buf)
    head = _UDP_HEAD.unpack_from
    while pos < end:
        length, port, alen = head(buf, pos)
        pos += 7
        address = buf[pos:pos + alen].decode("ascii")
        pos += alen
        out.append((buf[pos:pos + length], address, port))
        pos += length
    return out


def _options_json(opts, names) -> str:
    return json.dumps({k: getattr(opts, k) for k in names if getattr(opts, k) is not None})


class _Pump:
    """Transitional push adapter (until bridge/adapter.mjs pushes itself): one task per socket
    awaits the JS handle's batched receive promise and calls the sink; pause/resume gate it.
    Writes go to the handle without awaiting; its backpressure promise drives pause_writing."""

    def __init__(self):
        self._sink = None
        self._task: asyncio.Task | None = None
        self._reading = asyncio.Event()
        self._reading.set()
        self._lost = False
        self._waits = 0              # backpressure promises not yet settled
        self._paused_bytes = 0       # written while the handle said wait
        self._write_error: BaseException | None = None
        self._closed = False

    def _loop(self):
        return asyncio.get_running_loop()

    def _call(self, name, *args):
        try:
            getattr(self._sink, name)(*args)
        except Exception as exc:  # base.py: to the loop's handler, and delivery goes on
            self._loop().call_exception_handler({
                "message": f"Exception in socketiwa sink {name}()", "exception": exc})

    def _start(self, sink, pump) -> None:
        if self._sink is not None:
            raise RuntimeError("start() may be called once")
        self._sink = sink
        self._task = asyncio.ensure_future(pump())

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def _lose(self, exc) -> None:
        if not self._lost and self._sink is not None:
            self._lost = True
            self._reading.set()
            self._call("connection_lost", exc)

    def _lose_soon(self, exc) -> None:
        # Never re-entrant from a transport method (base.py)
        asyncio.get_running_loop().call_soon(self._lose, exc)

    def _backpressure(self, ready, nbytes: int) -> None:
        if ready is None:
            return
        if self._waits == 0:
            self._call("pause_writing")
        self._waits += 1
        self._paused_bytes += nbytes
        fut = asyncio.ensure_future(ready)
        fut.add_done_callback(self._settled)

    def _settled(self, fut) -> None:
        self._waits -= 1
        if not fut.cancelled() and fut.exception() is not None and self._write_error is None:
            self._write_error = SocketClosedError(f"write failed: {fut.exception()}")
        if self._waits == 0:
            self._paused_bytes = 0
            if self._sink is not None and not self._lost:
                self._call("resume_writing")

    def get_write_buffer_size(self) -> int:
        return _SEND_HIGH_WATER + self._paused_bytes if self._waits else 0


class DirectUdp(_Pump):
    def __init__(self, handle, opts: UdpOptions):
        super().__init__()
        self._h = handle
        self.endpoints = _endpoints(handle)
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        self._groups: list[tuple[str, str | None, str | None]] = []

    def start(self, sink) -> None:
        self._start(sink, self._pump)

    async def _pump(self):
        exc = None
        while not self._closed:
            if not self._reading.is_set():
                await self._reading.wait()
                continue
            try:
                packed = await self._h.recv()
            except JsException as e:
                err = _error(e, "UDP receive failed")
                if isinstance(err, ConnectError):  # ICMP-like: the socket goes on
                    self._call("error_received", err)
                    continue
                exc = err
                break
            if packed is None:
                break
            for data, address, port in _unpack_udp(packed.to_bytes()):
                if not self._reading.is_set():  # paused meanwhile: hold the rest until resumed
                    await self._reading.wait()
                if self._closed:
                    break
                self._call("datagram_received", data, address, port)
        self._lose(None if self._closed else exc)

    def send(self, data, address, port):
        """Queue one datagram; everything queued in one event-loop turn leaves in one FFI call."""
        if self._closed or self._lost:
            raise SocketClosedError("UDP socket closed")
        if self._write_error is not None:
            err, self._write_error = self._write_error, None
            raise err
        if len(data) > MAX_UDP_PAYLOAD:
            raise MessageTooLargeError(f"datagram of {len(data)} bytes exceeds {MAX_UDP_PAYLOAD}")
        addr = (address or "").encode("ascii")
        self._out.append(_UDP_HEAD.pack(len(data), port or 0, len(addr)) + addr + data)
        self._out_bytes += len(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out or self._closed:
            return
        batch = b"".join(self._out)
        nbytes = self._out_bytes
        self._out.clear()
        self._out_bytes = 0
        try:
            ready = self._h.send(to_js(batch))
        except JsException as e:
            self._write_error = _error(e, "UDP send failed")
            return
        self._backpressure(ready, nbytes)

    def get_write_buffer_size(self) -> int:
        return self._out_bytes + super().get_write_buffer_size()

    async def close(self):
        if self._closed:
            return
        self._flush()
        self._closed = True
        try:
            await self._h.close()
        except JsException as e:
            raise _error(e, "UDP close failed") from None
        finally:
            if self._task is None:
                self._lost = True
            else:
                self._lose_soon(None)

    async def join_group(self, group, interface=None, source=None):
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

    async def leave_group(self, group, interface=None, source=None):
        if interface is not None or source is not None:
            raise NotSupportedError("Direct Sockets has no interface or source-specific membership")
        try:
            await self._h.leave(group)
        except JsException as e:
            raise _error(e, f"cannot leave {group}") from None
        if (group, interface, source) in self._groups:
            self._groups.remove((group, interface, source))

    def joined_groups(self):
        return json.loads(self._h.joined())

    def set_multicast_ttl(self, ttl):
        raise NotSupportedError(
            "Direct Sockets fixes the multicast TTL when the socket opens: pass "
            "multicast_time_to_live= to create_multicast_socket")

    def set_multicast_loopback(self, flag):
        raise NotSupportedError(
            "Direct Sockets fixes multicast loopback when the socket opens: pass "
            "multicast_loopback= to create_multicast_socket")


async def open_udp(opts: UdpOptions) -> DirectUdp:
    fields = ("local_address", "local_port", "remote_address", "remote_port", "send_buffer_size",
              "receive_buffer_size", "dns_query_type", "ipv6_only", "multicast_time_to_live",
              "multicast_loopback", "multicast_allow_address_sharing")
    try:
        handle = await _bridge().openUdp(_options_json(opts, fields), opts.max_queue)
    except JsException as e:
        raise _error(e, "cannot open UDP socket") from None
    return DirectUdp(handle, opts)


class DirectStream(_Pump):
    def __init__(self, handle):
        super().__init__()
        self._h = handle
        self.endpoints = _endpoints(handle)
        self._aborted = False

    def start(self, sink) -> None:
        self._start(sink, self._pump)

    async def _pump(self):
        while not self._closed:
            if not self._reading.is_set():
                await self._reading.wait()
                continue
            try:
                chunk = await self._h.read()
            except JsException as e:
                if not self._closed:
                    self._lose(_error(e, "connection lost"))
                return
            if chunk is None:
                if not self._closed:
                    self._call("eof_received")
                return  # connection_lost follows from close()/abort()
            if not self._reading.is_set():  # paused while the read was pending
                await self._reading.wait()
            if not self._closed:
                self._call("data_received", chunk.to_bytes())

    def write(self, data) -> None:
        if self._closed or self._lost:
            raise SocketClosedError("TCP connection closed")
        if self._write_error is not None:
            raise self._write_error
        try:
            ready = self._h.write(to_js(data))
        except JsException as e:
            raise SocketClosedError(f"TCP write failed: {getattr(e, 'name', '')}: {e}") from None
        self._backpressure(ready, len(data))

    async def close(self):
        """Flush (every queued byte is written, checked against Chromium's write loss), then
        close; see TcpHandle.close in bridge/adapter.mjs."""
        if not self._closed:
            self._closed = True
            try:
                await self._h.close()
            except JsException:
                pass  # the peer may already have reset the connection; it is closed either way
        self._lose(None if not self._aborted else SocketClosedError("connection aborted"))

    def abort(self):
        """Close now: queued bytes are discarded and a write waiting for room fails."""
        if self._aborted:
            return
        self._aborted = True
        self._closed = True
        self._h.abort()
        self._lose_soon(None)


async def open_tcp(host: str, port: int, opts: TcpOptions) -> DirectStream:
    fields = ("no_delay", "keep_alive_delay", "send_buffer_size", "receive_buffer_size",
              "dns_query_type")
    try:
        handle = await _bridge().openTcp(host, port, _options_json(opts, fields))
    except JsException as e:
        raise _error(e, f"cannot connect to {host}:{port}") from None
    return DirectStream(handle)


class DirectServer(_Pump):
    def __init__(self, handle):
        super().__init__()
        self._h = handle
        self.endpoints = _endpoints(handle)

    def start(self, sink) -> None:
        self._start(sink, self._pump)

    async def _pump(self):
        while not self._closed:
            if not self._reading.is_set():
                await self._reading.wait()
                continue
            try:
                handle = await self._h.accept()
            except JsException as e:
                self._lose(None if self._closed else _error(e, "accept failed"))
                return
            if handle is None:
                break
            stream = DirectStream(handle)
            if self._closed:
                stream.abort()
                break
            self._call("connection_made", stream)
        self._lose(None)

    async def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            await self._h.close()
        except JsException:
            pass
        self._lose_soon(None)


async def open_tcp_server(host: str, port: int, backlog: int | None, ipv6_only: bool | None) -> DirectServer:
    options = json.dumps({"local_port": port or None, "backlog": backlog, "ipv6_only": ipv6_only})
    try:
        handle = await _bridge().openTcpServer(host, options)
    except JsException as e:
        raise _error(e, f"cannot listen on {host}:{port}") from None
    return DirectServer(handle)


async def permissions() -> PermissionState:
    raw = json.loads(await _bridge().permissions())
    return PermissionState(bool(raw.get("directSockets")), bool(raw.get("directSocketsMulticast")),
                           str(raw.get("localNetwork", "unsupported")),
                           str(raw.get("loopbackNetwork", "unsupported")), raw)
