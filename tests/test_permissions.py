"""Permissions: state queries, assert_permissions, typed denial."""
from runtimes import everywhere


@everywhere
async def test_permissions_granted_by_default(selenium):
    import socketiwa
    state = await socketiwa.permissions.state()
    assert set(state) == {"direct_sockets", "direct_sockets_multicast", "local_network", "loopback_network"}
    assert await socketiwa.permissions.direct_sockets() == "granted"
    assert await socketiwa.permissions.loopback_network() == "granted"
    await socketiwa.assert_permissions("direct_sockets", "loopback_network")
    try:
        await socketiwa.assert_permissions("teleport")
    except ValueError:
        pass
    else:
        raise AssertionError("unknown capability accepted")


@everywhere(only=("node",))
async def test_permission_denied_is_typed(selenium, udp_echo):
    """The Node harness denies like Chromium does; socketiwa raises PermissionDeniedError."""
    import js
    import socketiwa
    from pyodide.ffi import to_js
    host, port = udp_echo
    harness = js.directSocketsHarness
    harness.setPermissions(to_js({"directSockets": False}, dict_converter=js.Object.fromEntries))
    try:
        assert await socketiwa.permissions.direct_sockets() == "denied"
        try:
            await socketiwa.assert_permissions("direct_sockets", "loopback_network")
        except socketiwa.PermissionDeniedError as e:
            assert e.missing == ("direct_sockets",) and isinstance(e, PermissionError)
        else:
            raise AssertionError("assert_permissions passed while denied")
        for opener in (lambda: socketiwa.create_udp(remote_address=host, remote_port=port),
                       lambda: socketiwa.create_tcp(host, port),
                       lambda: socketiwa.create_tcp_server("127.0.0.1", 0)):
            try:
                await opener()
            except socketiwa.PermissionDeniedError:
                continue
            raise AssertionError("socket opened while Direct Sockets is denied")
    finally:
        harness.setPermissions(to_js({"directSockets": True}, dict_converter=js.Object.fromEntries))
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port)
    await sock.send(b"allowed again")
    assert (await sock.receive(timeout=5)).data == b"allowed again"
    await sock.close()
