"""Which TLS cipher suite socketiwa's QUIC negotiates by default, both roles, on every runtime.

Without AES hardware (Pyodide: the provider is AWS-LC in WebAssembly) ChaCha20-Poly1305 is
preferred, as the client's offer and as the server's choice; with it (CPython and the real
`cryptography`) aioquic's own order stays, so AES-GCM is negotiated. The peers are plain aioquic
on CPython, which picks the first suite of its own list that the client offers."""
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
def stock_aioquic_server(certs):
    """aioquic's serve() with its default configuration (AES-256-GCM first). Yields its port."""
    lt = quic_peers.LoopThread()
    server, _ = quic_peers.start_aioquic_echo_server(lt, certs, retry=False)
    yield quic_peers.server_port(server)
    server.close()
    lt.stop()


@everywhere(timeout=60, packages=QUIC_PACKAGES)
async def test_default_client_offer_negotiates_chacha_without_aes_hardware(selenium, stock_aioquic_server, certs):
    import sys
    from socketiwa import quic
    in_pyodide = sys.platform == "emscripten"
    # the runtime's own answer, checked against where it runs: the provider never has AES hardware
    assert quic.aes_hardware() is (not in_pyodide)
    config = quic.client_configuration(cadata=certs["ca"], server_name="localhost")
    offered = [c.name for c in config.cipher_suites]
    async with quic.connect_echo("127.0.0.1", stock_aioquic_server, config) as client:
        negotiated = client._quic.tls.key_schedule.cipher_suite.name
        assert await client.echo(b"which suite") == b"which suite"
        client.close()
    if in_pyodide:
        assert offered == ["CHACHA20_POLY1305_SHA256"]
        assert negotiated == "CHACHA20_POLY1305_SHA256"
    else:  # unchanged: aioquic's own order, and the stock server's first choice
        assert offered == ["AES_256_GCM_SHA384", "AES_128_GCM_SHA256", "CHACHA20_POLY1305_SHA256"]
        assert negotiated == "AES_256_GCM_SHA384"
    # an explicit list still wins over the runtime's preference
    config = quic.client_configuration(cadata=certs["ca"], server_name="localhost",
                                       cipher_suites=["AES_128_GCM_SHA256"])
    async with quic.connect_echo("127.0.0.1", stock_aioquic_server, config) as client:
        assert client._quic.tls.key_schedule.cipher_suite.name == "AES_128_GCM_SHA256"
        assert await client.echo(b"aes on request") == b"aes on request"
        client.close()


@pytest.fixture
def cpython_clients_offering_both(certs, free_udp_port, runtime_env):
    """Two aioquic clients on CPython, one after the other, against the runtime's server: one
    offering AES-128-GCM before ChaCha20, one with aioquic's default offer (AES-256, AES-128,
    ChaCha20). They retry their Initial until the server listens. Yields the server's port;
    afterwards checks, from the clients' side, which suites the server chose."""
    lt = quic_peers.LoopThread()
    data = os.urandom(64 * 1024)

    async def both():
        chosen = []
        for offer in (["AES_128_GCM_SHA256", "CHACHA20_POLY1305_SHA256"],
                      ["AES_256_GCM_SHA384", "AES_128_GCM_SHA256", "CHACHA20_POLY1305_SHA256"]):
            suite, digest = await quic_peers.aioquic_echo_client(free_udp_port, certs, data, offer=offer,
                                                                     with_suite=True)
            assert digest == hashlib.sha256(data).hexdigest(), "echo corrupted"
            chosen.append(suite)
        return chosen
    fut = lt.submit(both())
    yield free_udp_port
    try:
        chosen = fut.result(90)
    finally:
        lt.stop()
    if runtime_env.name == "cpython":  # unchanged: aioquic's order, the first AES suite offered
        assert chosen == ["AES_128_GCM_SHA256", "AES_256_GCM_SHA384"]
    else:
        assert chosen == ["CHACHA20_POLY1305_SHA256", "CHACHA20_POLY1305_SHA256"]


@everywhere(timeout=120, packages=QUIC_PACKAGES)
async def test_default_server_choice_prefers_chacha_without_aes_hardware(selenium, cpython_clients_offering_both,
                                                                        certs):
    import asyncio
    import sys
    from aioquic.quic.events import HandshakeCompleted
    from socketiwa import quic

    class Recorder(quic.EchoServerProtocol):
        closed = []
        suites = []

        def quic_event_received(self, event):
            if isinstance(event, HandshakeCompleted):
                type(self).suites.append(self._quic.tls.key_schedule.cipher_suite.name)
            super().quic_event_received(event)
    config = quic.server_configuration(certs["cert"], certs["key"])
    server = await quic.serve_echo("127.0.0.1", cpython_clients_offering_both, config, protocol=Recorder)

    async def both_closed():
        while len(Recorder.closed) < 2:
            await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(both_closed(), 90)
    finally:
        server.close()
    if sys.platform == "emscripten":
        assert [c.name for c in config.cipher_suites][0] == "CHACHA20_POLY1305_SHA256"
        assert Recorder.suites == ["CHACHA20_POLY1305_SHA256"] * 2
    else:
        assert Recorder.suites == ["AES_128_GCM_SHA256", "AES_256_GCM_SHA384"]
