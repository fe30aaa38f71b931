"""Multicast on 239.x over loopback: join, send, receive, leave, SSM, TTL/loopback setters."""
import socket
import threading
import time

import pytest
from runtimes import everywhere


@pytest.fixture
def host_multicast(multicast_group, free_udp_port):
    """A CPython member of the group: records what it receives and keeps sending 'host-hello'
    into the group until the test ends. Returns (group, port)."""
    group, port = multicast_group, free_udp_port
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    rx.bind(("0.0.0.0", port))
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                  socket.inet_aton(group) + socket.inet_aton("0.0.0.0"))
    rx.settimeout(0.05)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    stop = threading.Event()
    received = []

    def run():
        while not stop.is_set():
            tx.sendto(b"host-hello", (group, port))
            try:
                while True:
                    received.append(rx.recvfrom(65535)[0])
            except (TimeoutError, BlockingIOError):
                pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    yield group, port
    deadline = time.monotonic() + 5
    while b"runtime-hello" not in received and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join(5)
    rx.close()
    tx.close()
    assert b"runtime-hello" in received, "the CPython member never saw the runtime's datagram"


@everywhere
@pytest.mark.multicast
async def test_multicast_join_send_receive_leave(selenium, host_multicast):
    import asyncio
    import socketiwa
    group, port = host_multicast
    rx = await socketiwa.create_multicast_socket("0.0.0.0", port, allow_address_sharing=True,
                                                 multicast_loopback=True)
    await rx.add_membership(group)
    assert rx.joined_groups == [group]
    tx = await socketiwa.create_udp(local_address="0.0.0.0", multicast_time_to_live=1,
                                    multicast_loopback=True)
    await tx.send(b"runtime-hello", port, group)

    async def until(pred):
        while True:
            msg = await rx.receive(timeout=5)
            if pred(msg):
                return msg
    own = await asyncio.wait_for(until(lambda m: m.data == b"runtime-hello"), 10)
    assert own.rinfo.port == tx.local_port
    host = await asyncio.wait_for(until(lambda m: m.data == b"host-hello"), 10)
    assert host.rinfo.address.startswith("127.") or host.rinfo.address
    await rx.drop_membership(group)
    assert rx.joined_groups == []
    try:
        await rx.drop_membership(group)
    except (socketiwa.InvalidOptionError, socketiwa.SocketIwaError):
        pass
    else:
        raise AssertionError("leaving a group twice accepted")
    for bad in ("10.0.0.1", "not-an-ip"):
        try:
            await rx.add_membership(bad)
        except socketiwa.InvalidOptionError:
            continue
        raise AssertionError(f"joined non-multicast {bad}")
    await tx.close()
    await rx.close()


@everywhere
@pytest.mark.multicast
async def test_multicast_setters_are_honest(selenium, multicast_group):
    """Native applies TTL/loopback after open; Direct Sockets cannot and says so."""
    import socketiwa
    sock = await socketiwa.create_multicast_socket("0.0.0.0", 0, multicast_time_to_live=1)
    if socketiwa.backend_name() == "native":
        sock.set_multicast_ttl(4)
        sock.set_multicast_loopback(False)
        assert sock.options.multicast_time_to_live == 4 and sock.options.multicast_loopback is False
    else:
        for call in (lambda: sock.set_multicast_ttl(4), lambda: sock.set_multicast_loopback(False)):
            try:
                call()
            except socketiwa.NotSupportedError as e:
                assert "when the socket opens" in str(e)
            else:
                raise AssertionError("setter pretended to work")
        assert sock.options.multicast_time_to_live == 1
    try:
        sock.set_multicast_ttl(300)
    except socketiwa.InvalidOptionError:
        pass
    else:
        raise AssertionError("ttl 300 accepted")
    await sock.close()


@everywhere
@pytest.mark.multicast
async def test_source_specific_membership(selenium, multicast_group, free_udp_port):
    """SSM: only datagrams from the named source arrive."""
    import asyncio
    import socketiwa
    group, port = "232.1.2.3", free_udp_port
    rx = await socketiwa.create_multicast_socket("0.0.0.0", port, allow_address_sharing=True,
                                                 multicast_loopback=True)
    try:
        await rx.add_source_specific_membership("127.0.0.1", group)
    except socketiwa.NotSupportedError:
        assert socketiwa.backend_name() == "directsockets"   # honest refusal, never on native
        await rx.close()
        return
    good = await socketiwa.create_udp(local_address="127.0.0.1", multicast_loopback=True)
    other = await socketiwa.create_udp(local_address="127.0.0.2", multicast_loopback=True)
    await other.send(b"from-other-source", port, group)
    await good.send(b"from-source", port, group)
    msg = await rx.receive(timeout=5)
    assert msg.data == b"from-source" and msg.rinfo.address == "127.0.0.1"
    await asyncio.sleep(0.1)
    await rx.drop_source_specific_membership("127.0.0.1", group)
    for s in (good, other, rx):
        await s.close()
    assert not [m async for m in rx if m.data == b"from-other-source"]


# ---------------------------------------------------------------- IPv6 (CPython backend)
def _in_netns():
    import os
    if os.environ.get("SOCKETIWA_IN_NETNS") != "1":
        pytest.skip("IPv6 multicast tests run only inside scripts/netns.sh (loopback only)")


def _igmp6_groups(ifname="lo"):
    """The kernel's IPv6 multicast memberships on ``ifname`` (/proc/net/igmp6), as addresses."""
    import ipaddress
    out = set()
    with open("/proc/net/igmp6") as f:
        for line in f:
            parts = line.split()
            if parts[1] == ifname:
                out.add(str(ipaddress.IPv6Address(bytes.fromhex(parts[2]))))
    return out


def test_ipv6_multicast_membership_is_real():
    """add/drop_membership on an IPv6 socket change the kernel's membership (read back from
    /proc/net/igmp6), for link-local (ff02::) and transient (ff12::) groups, and source-specific
    membership its source filter (/proc/net/mcfilter6); TTL and loopback
    setters reach IPV6_MULTICAST_HOPS/LOOP; bad interfaces and groups are typed errors."""
    import asyncio
    import socketiwa
    _in_netns()

    async def main():
        m = await socketiwa.create_multicast_socket("::", 0, multicast_time_to_live=3,
                                                    multicast_loopback=False)
        raw = m._transport._sock
        assert raw.family == socket.AF_INET6
        assert raw.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS) == 3
        assert raw.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP) == 0
        before = _igmp6_groups()
        assert "ff02::1:3" not in before and "ff12::5:6" not in before
        await m.add_membership("ff02::1:3", "lo")
        await m.add_membership("ff12::5:6", str(socket.if_nametoindex("lo")))
        assert {"ff02::1:3", "ff12::5:6"} <= _igmp6_groups()
        assert m.joined_groups == ["ff02::1:3", "ff12::5:6"]
        await m.drop_membership("ff02::1:3", "lo")
        assert "ff02::1:3" not in _igmp6_groups() and "ff12::5:6" in _igmp6_groups()
        m.set_multicast_ttl(7)
        m.set_multicast_loopback(True)
        assert raw.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS) == 7
        assert raw.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP) == 1
        # source-specific (RFC 4607 range ff3x::): the kernel's filter lists the source
        await m.add_source_specific_membership("::1", "ff32::8000:1", "lo")
        assert "ff320000000000000000000080000001 00000000000000000000000000000001" in \
            open("/proc/net/mcfilter6").read()
        assert "::1->ff32::8000:1" in m.joined_groups
        await m.drop_source_specific_membership("::1", "ff32::8000:1", "lo")
        assert "ff320000000000000000000080000001" not in open("/proc/net/mcfilter6").read()
        for group, iface in (("ff02::1:4", "no-such-if0"), ("ff02::1:4", "::%no-such-if0"),
                             ("239.1.2.3", None), ("fe80::1", "lo")):
            try:
                await m.add_membership(group, iface)
            except socketiwa.InvalidOptionError:
                pass
            else:
                raise AssertionError(f"joined {group} on {iface}")
        await m.close()
        assert "ff12::5:6" not in _igmp6_groups()   # closing leaves every group
    asyncio.run(main())


def test_ipv6_multicast_delivery_on_loopback():
    """A datagram sent to an IPv6 group on lo reaches a socketiwa member, when this kernel
    delivers IPv6 multicast on loopback at all (checked first with plain sockets)."""
    import asyncio
    import struct
    import socketiwa
    _in_netns()
    group, lo = "ff12::7:8", socket.if_nametoindex("lo")

    def control() -> str | None:
        rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            rx.bind(("::", 0))
            rx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                          socket.inet_pton(socket.AF_INET6, group) + struct.pack("=I", lo))
            tx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
            try:
                tx.sendto(b"probe", (group, rx.getsockname()[1], 0, lo))
            except OSError as e:
                return f"the kernel will not send to {group} on lo here: {e}"
            rx.settimeout(1)
            try:
                rx.recvfrom(100)
            except TimeoutError:
                return (f"the kernel sent to {group} on lo but delivered nothing to a member "
                        "(plain sockets, 1 s): no IPv6 multicast over loopback in this netns")
            return None
        finally:
            rx.close()
            tx.close()
    why = control()
    if why is not None:
        pytest.skip(why)

    async def main():
        m = await socketiwa.create_multicast_socket("::", 0, multicast_loopback=True)
        await m.add_membership(group, "lo")
        tx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        tx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
        tx.sendto(b"v6 hello", (group, m.local_port, 0, lo))
        msg = await m.receive(timeout=5)
        assert msg.data == b"v6 hello" and msg.rinfo.family == "IPv6"
        tx.close()
        await m.close()
    asyncio.run(main())
