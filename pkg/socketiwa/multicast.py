"""Multicast UDP: a bound UDP socket with group membership."""
from __future__ import annotations

import ipaddress
from typing import Any

from .backends.base import UdpTransport
from .errors import InvalidOptionError
from .udp import UDPSocket


def _check_group(group: str) -> None:
    try:
        ok = ipaddress.ip_address(group).is_multicast
    except ValueError:
        ok = False
    if not ok:
        raise InvalidOptionError(f"{group!r} is not a multicast group address")


def _check_unicast(address: str, what: str) -> None:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise InvalidOptionError(f"{what} {address!r} is not an IP address") from None


def _check_interface(group: str, iface: str) -> None:
    """IPv4 groups take the interface's address; IPv6 groups an interface name, index or
    ``addr%name`` (as Node's dgram takes ``'::%eth0'``)."""
    if ":" in group:
        if not isinstance(iface, str) or not iface:
            raise InvalidOptionError(f"interface {iface!r} is not an interface name or index")
        return
    _check_unicast(iface, "interface")


class MulticastSocket(UDPSocket):
    """A bound UDP socket that joins multicast groups (any-source and source-specific), IPv4
    (bind ``0.0.0.0``) or IPv6 (bind ``::``; groups such as ``ff02::1:3``; IPv6 membership is
    CPython only for now)."""

    def _open_transport(self) -> UdpTransport:
        self._require_open()
        transport = self._transport
        assert transport is not None  # attached before the socket opens
        return transport

    async def add_membership(self, group: str, iface_or_source: str | None = None) -> None:
        """Join ``group``. The optional second argument is the local interface address (as in
        Node's dgram ``addMembership``)."""
        transport = self._open_transport()
        _check_group(group)
        if iface_or_source is not None:
            _check_interface(group, iface_or_source)
        await transport.join_group(group, interface=iface_or_source)

    async def drop_membership(self, group: str, iface_or_source: str | None = None) -> None:
        """Leave ``group``, joined with the same interface argument (a socket that is not a
        member gets an error: InvalidOptionError on CPython)."""
        transport = self._open_transport()
        _check_group(group)
        await transport.leave_group(group, interface=iface_or_source)

    async def add_source_specific_membership(self, source: str, group: str, iface: str | None = None) -> None:
        """Join ``group`` receiving only from ``source`` (SSM, RFC 4607)."""
        transport = self._open_transport()
        _check_unicast(source, "source")
        _check_group(group)
        await transport.join_group(group, interface=iface, source=source)

    async def drop_source_specific_membership(self, source: str, group: str, iface: str | None = None) -> None:
        """Leave a source-specific membership made by ``add_source_specific_membership``."""
        transport = self._open_transport()
        _check_unicast(source, "source")
        _check_group(group)
        await transport.leave_group(group, interface=iface, source=source)

    @property
    def joined_groups(self) -> list[str]:
        """The groups joined now: ``"group"``, or ``"source->group"`` for source-specific ones."""
        return self._transport.joined_groups() if self._transport is not None else []

    def set_multicast_ttl(self, ttl: int) -> None:
        """Change the TTL of outgoing multicast. Raises NotSupportedError where the platform
        fixes it at open (Direct Sockets): pass ``multicast_time_to_live`` instead."""
        if not isinstance(ttl, int) or not 0 <= ttl <= 255:
            raise InvalidOptionError("ttl must be in 0..255")
        self._open_transport().set_multicast_ttl(ttl)
        self.options.multicast_time_to_live = ttl

    def set_multicast_loopback(self, flag: bool) -> None:
        """Change whether our own multicast is looped back. Raises NotSupportedError where the
        platform fixes it at open (Direct Sockets): pass ``multicast_loopback`` instead."""
        self._open_transport().set_multicast_loopback(bool(flag))
        self.options.multicast_loopback = bool(flag)


async def create_multicast_socket(local_address: str = "0.0.0.0", local_port: int = 0, *,
                                  multicast_time_to_live: int | None = None,
                                  multicast_loopback: bool | None = None,
                                  allow_address_sharing: bool | None = None,
                                  **options: Any) -> MulticastSocket:
    """Open a bound UDP socket ready for ``add_membership``."""
    sock = MulticastSocket(local_address=local_address, local_port=local_port,
                           multicast_time_to_live=multicast_time_to_live,
                           multicast_loopback=multicast_loopback,
                           multicast_allow_address_sharing=allow_address_sharing, **options)
    await sock.open()
    return sock
