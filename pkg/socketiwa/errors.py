"""Typed errors. Each also derives from the closest builtin so generic handlers still work."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._base import RemoteInfo


class SocketIwaError(Exception):
    """Base class of every error socketiwa raises."""

    #: The browser's DOMException name (``"NotAllowedError"``, ...) when Direct Sockets raised it.
    js_name: str | None = None


class PermissionDeniedError(SocketIwaError, PermissionError):
    """The page's permissions policy or the user denied a Direct Sockets capability."""

    def __init__(self, message: str, missing: tuple[str, ...] = ()):
        super().__init__(message)
        self.missing = tuple(missing)


class ConnectError(SocketIwaError, ConnectionError):
    """Opening a socket failed: peer unreachable, connection refused, address in use, bad host."""


class SocketClosedError(SocketIwaError, ConnectionError):
    """The socket is closed (or closing) and cannot be used for this operation."""


class InvalidOptionError(SocketIwaError, ValueError):
    """An option or argument is out of range or inconsistent."""


class NotSupportedError(SocketIwaError, NotImplementedError):
    """The platform cannot do this (for example changing multicast TTL after open in Direct Sockets)."""


class FrameError(SocketIwaError, ValueError):
    """A received frame or envelope could not be decoded. ``data`` holds the raw bytes."""

    def __init__(self, message: str, data: bytes = b""):
        super().__init__(message)
        self.data = data
        #: For a malformed UDP datagram: who sent it (set before the socket's error handler sees it).
        self.rinfo: RemoteInfo | None = None


class MessageTooLargeError(FrameError):
    """A message exceeds the configured or platform maximum size."""


class AckTimeoutError(SocketIwaError, TimeoutError):
    """No acknowledgement arrived within the timeout of ``emit_with_ack``."""


class BackpressureError(SocketIwaError, BufferError):
    """A bounded queue is full and the operation cannot wait (for example too many pending acks)."""
