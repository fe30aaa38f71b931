"""What the page may do: the permissions policy and Local Network Access permission state.

On CPython every check answers "granted": desktop Python is bound by the OS, not a browser.
"""
from __future__ import annotations

from .backends import get_backend
from .errors import PermissionDeniedError

CAPABILITIES = ("direct_sockets", "direct_sockets_multicast", "local_network", "loopback_network")


async def state() -> dict[str, str]:
    """Every capability's state: 'granted', 'denied' or 'prompt'."""
    st = await get_backend().permissions()
    return {
        "direct_sockets": "granted" if st.direct_sockets else "denied",
        "direct_sockets_multicast": "granted" if st.direct_sockets_multicast else "denied",
        "local_network": st.local_network,
        "loopback_network": st.loopback_network,
    }


async def direct_sockets() -> str:
    """'granted' if the permissions policy allows Direct Sockets (TCPSocket, UDPSocket, ...)."""
    return (await state())["direct_sockets"]


async def direct_sockets_multicast() -> str:
    """'granted' if the permissions policy allows multicast on Direct Sockets UDP."""
    return (await state())["direct_sockets_multicast"]


async def local_network() -> str:
    """Local Network Access permission (bound UDP, multicast, private addresses)."""
    return (await state())["local_network"]


async def loopback_network() -> str:
    """Loopback Network permission (connections to 127.0.0.0/8 and ::1)."""
    return (await state())["loopback_network"]


async def assert_permissions(*capabilities: str) -> None:
    """Raise PermissionDeniedError naming every listed capability that is not granted.

    With no arguments, checks ``direct_sockets``. A 'prompt' state counts as not granted."""
    wanted = capabilities or ("direct_sockets",)
    unknown = [c for c in wanted if c not in CAPABILITIES]
    if unknown:
        raise ValueError(f"unknown capabilities {unknown}; known: {CAPABILITIES}")
    current = await state()
    missing = tuple(c for c in wanted if current[c] != "granted")
    if missing:
        detail = ", ".join(f"{c}={current[c]}" for c in missing)
        raise PermissionDeniedError(f"not permitted: {detail}", missing)
