"""Pyodide backend: Chrome's Direct Sockets through the JS adapter (bridge/adapter.mjs).

The page sets ``globalThis.socketiwaBridge = createBridge()``. Each call here crosses the FFI
once and moves whole batches: received datagrams arrive packed in one Uint8Array (copied once by
``to_bytes``), and datagrams sent in the same event-loop turn leave in one packed call.
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
_SEND_HIGH_WATER = 256 * 1024  # queued outgoing bytes before send() waits for the batch in flight

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


class DirectUdp:
    def __init__(self, handle, opts: UdpOptions):
        self._h = handle
        self.endpoints = _endpoints(handle)
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        self._inflight: asyncio.Future | None = None
        self._send_error: BaseException | None = None
        self._closed = False
        self._groups: list[tuple[str, str | None, str | None]] = []

    async def recv(self):
        try:
            packed = await self._h.recv()
        except JsException as e:
            raise _error(e, "UDP receive failed") from None
        if packed is None:
            raise SocketClosedError("UDP socket closed")
        return _unpack_udp(packed.to_bytes())

    async def send(self, data, address, port):
        self.send_nowait(data, address, port)
        if self._out_bytes > _SEND_HIGH_WATER and self._inflight is not None:
            await self._inflight

    def send_nowait(self, data, address, port):
        """Queue one datagram; everything queued in one event-loop turn leaves in one FFI call."""
        if self._closed:
            raise SocketClosedError("UDP socket closed")
        if self._send_error is not None:
            err, self._send_error = self._send_error, None
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
        self._out.clear()
        self._out_bytes = 0
        try:
            ready = self._h.send(to_js(batch))
        except JsException as e:
            self._send_error = _error(e, "UDP send failed")
            return
        self._inflight = asyncio.ensure_future(ready) if ready is not None else None

    async def close(self):
        if self._closed:
            return
        self._flush()
        self._closed = True
        try:
            await self._h.close()
        except JsException as e:
            raise _error(e, "UDP close failed") from None

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


class DirectStream:
    def __init__(self, handle):
        self._h = handle
        self.endpoints = _endpoints(handle)
        self._closed = False

    async def read(self):
        try:
            chunk = await self._h.read()
        except JsException as e:
            raise _error(e, "connection lost") from None
        return b"" if chunk is None else chunk.to_bytes()

    async def write(self, data):
        if self._closed:
            raise SocketClosedError("TCP connection closed")
        try:
            ready = self._h.write(to_js(data))
            if ready is not None:
                await ready
        except JsException as e:
            raise SocketClosedError(f"TCP write failed: {getattr(e, 'name', '')}: {e}") from None

    async def close(self):
        """Flush (every queued byte is written, checked against Chromium's write loss), then
        close; see TcpHandle.close in bridge/adapter.mjs."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._h.close()
        except JsException:
            pass  # the peer may already have reset the connection; it is closed either way

    def abort(self):
        """Close now: queued bytes are discarded and a write() waiting for room fails."""
        self._closed = True
        self._h.abort()


async def open_tcp(host: str, port: int, opts: TcpOptions) -> DirectStream:
    fields = ("no_delay", "keep_alive_delay", "send_buffer_size", "receive_buffer_size",
              "dns_query_type")
    try:
        handle = await _bridge().openTcp(host, port, _options_json(opts, fields))
    except JsException as e:
        raise _error(e, f"cannot connect to {host}:{port}") from None
    return DirectStream(handle)


class DirectServer:
    def __init__(self, handle):
        self._h = handle
        self.endpoints = _endpoints(handle)
        self._closed = False

    async def accept(self):
        if self._closed:
            return None
        try:
            handle = await self._h.accept()
        except JsException as e:
            if self._closed:
                return None
            raise _error(e, "accept failed") from None
        return None if handle is None else DirectStream(handle)

    async def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            await self._h.close()
        except JsException:
            pass


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
