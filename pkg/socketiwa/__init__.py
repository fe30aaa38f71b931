"""socketiwa: real networking for Python in the browser (Direct Sockets in an Isolated Web App),
with the same API on CPython."""
from __future__ import annotations

from . import permissions
from ._webloop import configure_webloop
from ._base import Ack, Datagram, ReadyState, RemoteInfo
from .session import CloseInfo
from .backends import get_backend
from .errors import (AckTimeoutError, BackpressureError, ConnectError, FrameError,
                     InvalidOptionError, MessageTooLargeError, NotSupportedError,
                     PermissionDeniedError, SocketClosedError, SocketIwaError)
from .multicast import MulticastSocket, create_multicast_socket
from .permissions import assert_permissions
from .server import TCPServer, create_tcp_server
from .tcp import TCPSocket, create_tcp
from .udp import UDPSocket, create_udp

__version__ = "0.1.0"


def backend_name() -> str:
    """'native' on CPython, 'directsockets' in Pyodide."""
    return get_backend().name


__all__ = [
    "create_udp", "create_tcp", "create_tcp_server", "create_multicast_socket", "permissions",
    "assert_permissions", "backend_name", "configure_webloop", "UDPSocket", "TCPSocket", "TCPServer", "MulticastSocket",
    "ReadyState", "RemoteInfo", "Datagram", "Ack", "CloseInfo", "SocketIwaError", "PermissionDeniedError",
    "ConnectError", "SocketClosedError", "InvalidOptionError", "NotSupportedError", "FrameError",
    "MessageTooLargeError", "AckTimeoutError", "BackpressureError",
]
