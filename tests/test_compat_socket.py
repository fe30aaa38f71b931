"""socketiwa.compat.socket: the stdlib socket API over socketiwa, non-blocking and blocking."""
from runtimes import everywhere


@everywhere
async def test_nonblocking_udp_and_tcp(selenium, udp_echo, tcp_echo):
    import asyncio
    import errno
    from socketiwa import compat

    async def retry(call):
        for _ in range(500):
            try:
                return call()
            except BlockingIOError:
                await asyncio.sleep(0.01)
        raise AssertionError("operation never completed")

    u = compat.socket(compat.AF_INET, compat.SOCK_DGRAM)
    u.setblocking(False)
    u.bind(("127.0.0.1", 0))
    assert await retry(lambda: u.sendto(b"nb-udp", udp_echo)) == 6
    data, addr = await retry(lambda: u.recvfrom(2048))
    assert data == b"nb-udp" and addr == udp_echo
    assert u.getsockname()[1] > 0
    u.close()
    try:
        u.sendto(b"x", udp_echo)
    except OSError as e:
        assert e.errno == errno.EBADF
    else:
        raise AssertionError("sendto after close accepted")

    t = compat.socket()
    t.setblocking(False)
    assert t.connect_ex(tcp_echo) == errno.EINPROGRESS
    def peer():  # as with an OS socket: ENOTCONN until the connect completes
        try:
            return t.getpeername()
        except OSError as e:
            if e.errno == errno.ENOTCONN:
                raise BlockingIOError() from None
            raise
    await retry(peer)
    assert t.getpeername() == tcp_echo
    assert t.send(b"nb-tcp") == 6
    got = b""
    while len(got) < 6:
        got += await retry(lambda: t.recv(100))
    assert got == b"nb-tcp"
    t.close()


@everywhere
async def test_blocking_mode_needs_jspi(selenium, tcp_echo):
    """Blocking calls work where JSPI can suspend (the IWA); elsewhere a clear error."""
    from socketiwa import NotSupportedError, compat
    try:
        from pyodide.ffi import can_run_sync
        jspi = can_run_sync()
    except ImportError:
        jspi = False
    s = compat.socket()
    s.settimeout(5)
    if jspi:
        s.connect(tcp_echo)
        s.sendall(b"blocking")
        got = b""
        while len(got) < 8:
            got += s.recv(100)
        assert got == b"blocking"
    else:
        try:
            s.connect(tcp_echo)
        except NotSupportedError as e:
            assert "JSPI" in str(e) or "standard socket module" in str(e)
        else:
            raise AssertionError("blocking connect without JSPI did not raise")
    s.close()
    try:
        compat.socket(99, compat.SOCK_STREAM)
    except OSError:
        pass
    else:
        raise AssertionError("unknown address family accepted")
