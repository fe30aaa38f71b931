"""QUIC echo (ALPN "echo") end to end: socketiwa.quic in the runtime against aioquic on CPython,
both directions; 10 MB by SHA-256, Retry, ChaCha20 and AES suites, key update, close, tampering."""
import hashlib
import os

import pytest
from runtimes import everywhere

import quic_peers

QUIC_PACKAGES = ("socketiwa", "aioquic")


@pytest.fixture(scope="module")
def certs():
    return quic_peers.make_certs()


@pytest.fixture(scope="module")
def host_quic(certs):
    """aioquic echo servers on CPython: one plain, one demanding Retry. Returns their ports."""
    lt = quic_peers.LoopThread()
    plain, closed = quic_peers.start_aioquic_echo_server(lt, certs, retry=False)
    retry, closed_retry = quic_peers.start_aioquic_echo_server(lt, certs, retry=True)
    yield {"plain": quic_peers.server_port(plain), "retry": quic_peers.server_port(retry),
           "closed": closed}
    plain.close()
    retry.close()
    lt.stop()


@pytest.fixture(scope="module")
def ten_mb_payload():
    """(seed, size, sha256): regenerated in the body, see test_tcp.ten_mb."""
    import random
    seed, size = int.from_bytes(os.urandom(4), "big"), 10 * 1024 * 1024
    return seed, size, hashlib.sha256(random.Random(seed).randbytes(size)).hexdigest()


@everywhere(timeout=180, packages=QUIC_PACKAGES)
async def test_quic_client_10mb_both_suites_and_key_update(selenium, host_quic, certs, ten_mb_payload):
    import hashlib
    import random
    from socketiwa import quic
    seed, size, digest = ten_mb_payload
    data = random.Random(seed).randbytes(size)
    for suite in ("AES_128_GCM_SHA256", "CHACHA20_POLY1305_SHA256"):
        config = quic.client_configuration(cadata=certs["ca"], server_name="localhost",
                                           cipher_suites=[suite])
        async with quic.connect_echo("127.0.0.1", host_quic["plain"], config) as client:
            assert client._quic.tls.key_schedule.cipher_suite.name == suite
            assert await client.echo(b"hello quic") == b"hello quic"
            client.key_update()
            assert await client.echo(b"after key update") == b"after key update"
            if suite == "AES_128_GCM_SHA256":
                echoed = await client.echo(data)
                assert len(echoed) == len(data) and hashlib.sha256(echoed).hexdigest() == digest
            client.close(error_code=0x42, reason_phrase="done " + suite)
            await client.wait_closed()


@everywhere(timeout=60, packages=QUIC_PACKAGES)
async def test_quic_client_retry_and_untrusted_server(selenium, host_quic, certs):
    import asyncio
    from socketiwa import quic

    async def through_retry():
        config = quic.client_configuration(cadata=certs["ca"], server_name="localhost")
        async with quic.connect_echo("127.0.0.1", host_quic["retry"], config) as client:
            assert await client.echo(b"through retry") == b"through retry"
            assert client._quic._retry_count == 1      # the server really sent a Retry

    async def untrusted():
        # a client that does not trust the test CA must refuse the server
        strict = quic.client_configuration(server_name="localhost")
        try:
            async with quic.connect_echo("127.0.0.1", host_quic["plain"], strict) as client:
                await client.echo(b"should not get here")
        except ConnectionError:
            return
        raise AssertionError("handshake with an untrusted certificate succeeded")
    # Bounded well inside the runner's timeout, so a hang fails here with its step named
    # instead of taking the runtime down for the tests after it.
    await asyncio.wait_for(through_retry(), 20)
    await asyncio.wait_for(untrusted(), 20)


@pytest.fixture
def tamper_proxy(host_quic):
    proxy = quic_peers.TamperProxy(host_quic["plain"], every=5)
    yield proxy.port
    proxy.close()
    assert proxy.tampered > 0, "the proxy never tampered with a packet"


@everywhere(timeout=120, packages=QUIC_PACKAGES)
async def test_quic_tampered_packets_are_dropped_not_delivered(selenium, tamper_proxy, certs):
    """Every 5th 1-RTT packet from the server is corrupted on the way; AEAD rejects them,
    QUIC retransmits, and the data still arrives intact."""
    import asyncio
    import hashlib
    import os
    from socketiwa import quic
    data = os.urandom(512 * 1024)
    config = quic.client_configuration(cadata=certs["ca"], server_name="localhost")
    async with quic.connect_echo("127.0.0.1", tamper_proxy, config) as client:
        echoed = await asyncio.wait_for(client.echo(data), 90)
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()


@pytest.fixture
def host_quic_client(certs, free_udp_port):
    """aioquic's client on CPython echoing 1 MB through the runtime's server, started at once
    and retrying its Initial until the server listens. Yields the port the server must use."""
    lt = quic_peers.LoopThread()
    data = os.urandom(1024 * 1024)
    fut = lt.submit(quic_peers.aioquic_echo_client(free_udp_port, certs, data, close_code=0x99))
    yield free_udp_port
    try:
        assert fut.result(120) == hashlib.sha256(data).hexdigest()
    finally:
        lt.stop()


@everywhere(timeout=150, packages=QUIC_PACKAGES)
async def test_quic_server_in_runtime_with_cpython_client(selenium, host_quic_client, certs):
    import asyncio
    from socketiwa import quic

    class Recorder(quic.EchoServerProtocol):
        closed = []
    config = quic.server_configuration(certs["cert"], certs["key"])
    server = await quic.serve_echo("127.0.0.1", host_quic_client, config, retry=True, protocol=Recorder)

    async def wait_closed():
        while not Recorder.closed:
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait_closed(), 120)
    assert Recorder.closed[0] == (0x99, "host client done")
    server.close()
