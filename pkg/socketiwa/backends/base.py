"""The small interface every transport backend implements.

Backends move bytes and addresses; they know nothing about events, frames or acks. Each receive
call returns a *batch* so that a backend crossing an expensive boundary (the Pyodide/JS FFI) pays
for it once per batch, not once per message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Largest UDP payload over IPv4 (65535 - 8 byte UDP header - 20 byte IP header).
MAX_UDP_PAYLOAD = 65507


@dataclass(slots=True)
class UdpOptions:
    local_address: str | None = None
    local_port: int | None = None
    remote_address: str | None = None
    remote_port: int | None = None
    send_buffer_size: int | None = None
    receive_buffer_size: int | None = None
    dns_query_type: str | None = None  # "ipv4" | "ipv6"
    ipv6_only: bool | None = None
    multicast_time_to_live: int | None = None
    multicast_loopback: bool | None = None
    multicast_allow_address_sharing: bool | None = None
    max_queue: int = 1024  # datagrams buffered before reading pauses

    @property
    def bound(self) -> bool:
        return self.remote_address is None


@dataclass(slots=True)
class TcpOptions:
    no_delay: bool = False
    keep_alive_delay: int | None = None  # milliseconds, as in Direct Sockets
    send_buffer_size: int | None = None
    receive_buffer_size: int | None = None
    dns_query_type: str | None = None


@dataclass(slots=True)
class Endpoints:
    local_address: str = ""
    local_port: int = 0
    remote_address: str | None = None
    remote_port: int | None = None


class UdpTransport(Protocol):
    endpoints: Endpoints

    async def recv(self) -> list[tuple[bytes, str, int]]:
        """Wait for and return every datagram queued so far as (data, address, port).

        Raises SocketClosedError once the socket is closed and the queue is empty."""

    async def send(self, data: bytes, address: str | None, port: int | None) -> None:
        """Send one datagram; ``data`` is never empty (UDPSocket refuses that: Chromium can't)."""

    async def close(self) -> None: ...
    async def join_group(self, group: str, interface: str | None = None,
                         source: str | None = None) -> None: ...
    async def leave_group(self, group: str, interface: str | None = None,
                          source: str | None = None) -> None: ...
    def joined_groups(self) -> list[str]: ...
    def set_multicast_ttl(self, ttl: int) -> None: ...
    def set_multicast_loopback(self, flag: bool) -> None: ...


class StreamTransport(Protocol):
    endpoints: Endpoints

    async def read(self) -> bytes:
        """Return the bytes received so far (at least one), or b"" at end of stream."""

    async def write(self, data: bytes) -> None:
        """Queue ``data``; returns once the platform's buffer has room (backpressure)."""

    async def close(self) -> None:
        """Flush what write() queued, send FIN, release the socket. May wait as long as the peer
        does not read: callers bound it (TCPSocket.close's timeout)."""

    def abort(self) -> None:
        """Close now without flushing: discard unsent data, reset the connection, and make a
        write() that is waiting for buffer room fail with SocketClosedError. Must not block.
        (Optional: TCPSocket falls back to cancelling the waiting write and an unawaited close.)"""


class ServerTransport(Protocol):
    endpoints: Endpoints

    async def accept(self) -> StreamTransport | None:
        """Next accepted connection, or None once the server is closed."""

    async def close(self) -> None:
        """Stop listening. Must not wait for accepted connections to close (their owners close
        them); connections not yet handed out by accept() are reset."""


@dataclass(slots=True)
class PermissionState:
    direct_sockets: bool = True
    direct_sockets_multicast: bool = True
    local_network: str = "granted"
    loopback_network: str = "granted"
    details: dict = field(default_factory=dict)
