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
