"""The small interface every transport backend implements.

Backends move bytes and addresses; they know nothing about events, frames or acks. They push
what arrives into a sink (see "The push interface" below) and queue what is sent without blocking.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

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


# ---- The push interface (issue 9). A backend *pushes* what arrives into a sink the socket
# object gives it, the way asyncio transports call their protocol: no task per socket waits in a
# receive call, and in the browser JS calls Python once per arrival instead of Python awaiting a
# promise per batch. Names follow asyncio's Protocol so socketiwa.aio can pass straight through.
#
# Rules every backend keeps:
# - Sink methods are called on the event loop's thread, one at a time, never re-entrantly from
#   inside a transport method (start/pause/resume/send/write/close must not call back
#   synchronously; schedule instead), with one exception as in asyncio: pause_writing() is called
#   from inside send()/write() when that call takes the queue over the high-water mark (a writer
#   that never yields must see the pause at once, or it queues without bound).
# - An exception raised by a sink method goes to the loop's exception handler
#   (loop.call_exception_handler) and delivery continues: a bad handler never stops receiving.
# - pause_reading() stops sink calls promptly (at most the arrivals already handed over in the
#   current batch); the platform's own buffer then fills and the peer is pushed back (TCP) or
#   datagrams drop (UDP). resume_reading() restarts. Both are idempotent.
# - connection_lost(exc) is called exactly once, last: exc None after close() or a clean end,
#   else the error (a socketiwa.errors type) that ended the socket.
# - Writes never block: they queue. A backend calls pause_writing() when its queue goes over the
#   high-water mark and resume_writing() when it drains below the low one (asyncio semantics);
#   the socket object turns those into an awaitable drain.


class DatagramSink(Protocol):
    def datagram_received(self, data: bytes, address: str, port: int) -> None: ...
    def error_received(self, exc: Exception) -> None:
        """A non-fatal error (an ICMP unreachable and the like): the socket goes on."""
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...


class StreamSink(Protocol):
    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> None:
        """The peer finished sending (FIN). connection_lost follows once the socket is closed."""
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...


class AcceptSink(Protocol):
    def connection_made(self, stream: "StreamTransport") -> None:
        """A new accepted connection; its owner calls stream.start(sink) to receive."""
    def connection_lost(self, exc: Exception | None) -> None:
        """The listener ended (closed, or failed with exc)."""


class UdpTransport(Protocol):
    endpoints: Endpoints

    def start(self, sink: DatagramSink) -> None:
        """Begin delivering to ``sink`` (called once, right after open)."""
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...

    def send(self, data: bytes, address: str | None, port: int | None) -> None:
        """Queue one datagram (never empty: Chromium's UDPSocket refuses that). Raises
        MessageTooLargeError, SocketClosedError, or the error a previous send hit."""

    def get_write_buffer_size(self) -> int: ...

    async def close(self) -> None:
        """Hand what send() queued to the platform, release the socket, then connection_lost."""

    async def join_group(self, group: str, interface: str | None = None,
                         source: str | None = None) -> None: ...
    async def leave_group(self, group: str, interface: str | None = None,
                          source: str | None = None) -> None: ...
    def joined_groups(self) -> list[str]: ...
    def set_multicast_ttl(self, ttl: int) -> None: ...
    def set_multicast_loopback(self, flag: bool) -> None: ...


class StreamTransport(Protocol):
    endpoints: Endpoints

    def start(self, sink: StreamSink) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...

    def write(self, data: bytes) -> None:
        """Queue ``data`` (never blocks; pause_writing() says when to stop). Raises
        SocketClosedError after close()/abort() or once the connection is lost."""

    def get_write_buffer_size(self) -> int: ...

    async def close(self) -> None:
        """Flush what write() queued, send FIN, release the socket. May wait as long as the peer
        does not read: callers bound it (TCPSocket.close's timeout) and then abort()."""

    def abort(self) -> None:
        """Close now without flushing: discard unsent data, reset the connection. Never blocks;
        connection_lost follows (scheduled, not re-entrant)."""


class ServerTransport(Protocol):
    endpoints: Endpoints

    def start(self, sink: AcceptSink) -> None: ...
    def pause_reading(self) -> None:
        """Stop accepting (the OS backlog holds new connections) until resume_reading()."""
    def resume_reading(self) -> None: ...

    async def close(self) -> None:
        """Stop listening. Must not wait for accepted connections to close (their owners close
        them); connections not yet handed to connection_made are reset."""


@dataclass(slots=True)
class PermissionState:
    direct_sockets: bool = True
    direct_sockets_multicast: bool = True
    local_network: str = "granted"
    loopback_network: str = "granted"
    details: dict[str, Any] = field(default_factory=dict)  # what the platform reported, as is


class Backend(Protocol):
    """What a backend module provides (``native`` on CPython, ``directsockets`` in Pyodide);
    ``socketiwa.backends.set_backend`` takes any object that has these."""

    name: str

    async def open_udp(self, opts: UdpOptions) -> UdpTransport: ...
    async def open_tcp(self, host: str, port: int, opts: TcpOptions) -> StreamTransport: ...
    async def open_tcp_server(self, host: str, port: int, backlog: int | None,
                              ipv6_only: bool | None) -> ServerTransport: ...
    async def permissions(self) -> PermissionState: ...
