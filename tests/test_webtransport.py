"""WebTransport (socketiwa.h3.webtransport) on every runtime: the socketiwa client against a
plain-aioquic WebTransport server on CPython, and socketiwa at both ends (several sessions on
one connection, streams both ways, datagrams, reset codes, close with code and reason both
ways, rejection, bad input). Chromium as the client: test_webtransport_chromium.py."""
import pytest
from runtimes import everywhere

import h3_peers
import quic_peers

H3_PACKAGES = ("socketiwa", "aioquic")


@pytest.fixture(scope="module")
def certs():
    return quic_peers.make_certs()


@pytest.fixture
def aioquic_wt_server(certs):
    lt = quic_peers.LoopThread()
    server = h3_peers.start_aioquic_h3_server(lt, certs)
    h3_peers.wt_closes.clear()
    yield quic_peers.server_port(server)
    server.close()
    lt.stop()
    assert h3_peers.wt_closes == [(4000, "client-bye")]   # the aioquic server parsed our capsule


@everywhere(timeout=90, packages=H3_PACKAGES)
async def test_webtransport_client_against_aioquic_server(selenium, aioquic_wt_server, certs):
    import asyncio
    from socketiwa import h3

    config = h3.client_configuration(cadata=certs["ca"], server_name="localhost")

    async def scenario():
        async with h3.connect("127.0.0.1", aioquic_wt_server, configuration=config) as client:
            session = await client.webtransport("/wt")
            uni = await session.accept_unidirectional_stream()
            assert await uni.read_all() == b"server-uni-hello"
            bidi = await session.accept_bidirectional_stream()
            assert await bidi.read_all() == b"server-bidi-hello"
            for i in range(10):
                session.send_datagram(b"dg-%d" % i)
                assert await asyncio.wait_for(session.receive_datagram(), 5) == b"echo:dg-%d" % i
            stream = await session.create_bidirectional_stream()
            payload = bytes(range(256)) * 1000
            await stream.write(payload, end=True)
            assert await stream.read_all() == payload
            out = await session.create_unidirectional_stream()
            await out.write(b"hello uni", end=True)
            reply = await session.accept_unidirectional_stream()
            assert await reply.read_all() == b"uni-echo:hello uni"
            await session.close(4000, "client-bye")
            assert await session.wait_closed() == (4000, "client-bye")

            # the server closes a second session with its own code and reason
            second = await client.webtransport("/wt")
            second.send_datagram(b"close-me")
            assert await asyncio.wait_for(second.wait_closed(), 10) == (4242, "server-bye")
            assert second.closed_by_peer
    await asyncio.wait_for(scenario(), 60)


@everywhere(timeout=120, packages=H3_PACKAGES)
async def test_webtransport_socketiwa_both_ends(selenium, certs):
    import asyncio
    from socketiwa import h3
    from socketiwa.errors import (ConnectError, InvalidOptionError, MessageTooLargeError,
                                  SocketClosedError)

    server_seen = {"closes": {}, "resets": []}

    async def on_session(session):
        if session.path == "/nope":
            return await session.reject(404)
        if session.path == "/boom":
            raise RuntimeError("handler fails before accepting")
        await session.accept()
        tasks = []

        async def echo_bidi(stream):
            try:
                data = await stream.read_all()
            except h3.StreamResetError as exc:
                server_seen["resets"].append(exc.code)
                return
            if data == b"reset-me":
                stream.reset(77)
            else:
                await stream.write(data, end=True)

        async def bidi():
            while True:
                tasks.append(asyncio.ensure_future(echo_bidi(await session.accept_bidirectional_stream())))

        async def uni():
            while True:
                data = await (await session.accept_unidirectional_stream()).read_all()
                reply = await session.create_unidirectional_stream()
                await reply.write(session.path.encode() + b":" + data, end=True)

        async def datagrams():
            while True:
                data = await session.receive_datagram()
                if data == b"close-me":
                    await session.close(4242, "server-bye")
                    return
                session.send_datagram(session.path.encode() + b":" + data)
        tasks += [asyncio.ensure_future(f()) for f in (bidi, uni, datagrams)]
        try:
            server_seen["closes"][session.path] = (await session.wait_closed(), session.closed_by_peer)
        finally:
            for t in tasks:
                t.cancel()

    server = await h3.serve("127.0.0.1", 0, webtransport=on_session,
                            configuration=h3.server_configuration(certs["cert"], certs["key"]))
    config = h3.client_configuration(cadata=certs["ca"], server_name="localhost")
    try:
        async with h3.connect("127.0.0.1", server.port, configuration=config) as client:
            # several sessions on one connection, each kept apart
            sessions = [await client.webtransport(f"/s{i}") for i in range(3)]
            for s in sessions:
                s.send_datagram(b"hi")
            for s in sessions:
                assert await asyncio.wait_for(s.receive_datagram(), 5) == s.path.encode() + b":hi"
            streams = [await s.create_bidirectional_stream() for s in sessions]
            for i, st in enumerate(streams):
                await st.write(b"x" * (100000 + i), end=True)
            assert [len(await st.read_all()) for st in streams] == [100000, 100001, 100002]
            for s in sessions:
                out = await s.create_unidirectional_stream()
                await out.write(b"u", end=True)
            assert [await (await s.accept_unidirectional_stream()).read_all() for s in sessions] == \
                [b"/s0:u", b"/s1:u", b"/s2:u"]

            # stream resets carry WebTransport codes both ways
            st = await sessions[0].create_bidirectional_stream()
            await st.write(b"reset-me", end=True)
            try:
                await st.read_all()
            except h3.StreamResetError as exc:
                assert exc.code == 77
            else:
                raise AssertionError("no reset")
            st = await sessions[0].create_bidirectional_stream()
            await st.write(b"partial")
            await asyncio.sleep(0.1)   # a reset before the stream's header arrives names no session
            st.reset(5)
            for _ in range(100):
                if server_seen["resets"]:
                    break
                await asyncio.sleep(0.02)
            assert server_seen["resets"] == [5]

            # bad input: typed errors, the session stays usable
            try:
                sessions[1].send_datagram(b"z" * (sessions[1].max_datagram_size + 1))
            except MessageTooLargeError:
                pass
            else:
                raise AssertionError("oversize datagram accepted")
            try:
                await sessions[1].close(1, "r" * 2000)
            except InvalidOptionError:
                pass
            else:
                raise AssertionError("a 2000-byte reason was accepted")
            sessions[1].send_datagram(b"still")
            assert await asyncio.wait_for(sessions[1].receive_datagram(), 5) == b"/s1:still"

            # close both ways, with code and reason
            await sessions[0].close(4000, "client-bye")
            sessions[1].send_datagram(b"close-me")
            assert await asyncio.wait_for(sessions[1].wait_closed(), 5) == (4242, "server-bye")
            try:
                await sessions[1].create_bidirectional_stream()
            except SocketClosedError:
                pass
            else:
                raise AssertionError("a stream opened on a closed session")
            # the third session is unaffected by the other two closing
            sessions[2].send_datagram(b"alive")
            assert await asyncio.wait_for(sessions[2].receive_datagram(), 5) == b"/s2:alive"

            # refused sessions: a typed error with the status
            for path, status in (("/nope", 404), ("/boom", 500)):
                try:
                    await client.webtransport(path)
                except ConnectError as exc:
                    assert str(status) in str(exc)
                else:
                    raise AssertionError(f"{path} was accepted")
            await sessions[2].close(7, "last")
            for _ in range(100):
                if len(server_seen["closes"]) == 3:
                    break
                await asyncio.sleep(0.02)
            assert server_seen["closes"] == {"/s0": ((4000, "client-bye"), True),
                                             "/s1": ((4242, "server-bye"), False),
                                             "/s2": ((7, "last"), True)}
            assert not client.wt_sessions and not client.wt_streams   # nothing left behind
    finally:
        await server.aclose()
