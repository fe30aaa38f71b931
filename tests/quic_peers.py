"""QUIC peers on CPython for the QUIC tests: plain aioquic on plain asyncio (no socketiwa), so the
runtime under test talks to an independent implementation."""
from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import socket
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_certs() -> dict[str, bytes]:
    """A CA and a server certificate for localhost/127.0.0.1, as PEM."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "socketiwa test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return {
        "ca": ca.public_bytes(pem),
        "cert": cert.public_bytes(pem),
        "key": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    }


class LoopThread:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def start_aioquic_echo_server(lt: LoopThread, certs, *, retry: bool):
    """aioquic's own serve() on CPython, echoing streams; returns (server, closed_list)."""
    from aioquic.asyncio import QuicConnectionProtocol, serve
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import ConnectionTerminated, StreamDataReceived
    import os
    import tempfile
    closed = []

    class Echo(QuicConnectionProtocol):
        def quic_event_received(self, event):
            if isinstance(event, StreamDataReceived):
                self._quic.send_stream_data(event.stream_id, event.data, end_stream=event.end_stream)
            elif isinstance(event, ConnectionTerminated):
                closed.append((event.error_code, event.reason_phrase))

    config = QuicConfiguration(is_client=False, alpn_protocols=["echo"])
    d = tempfile.mkdtemp()
    for name in ("cert", "key"):
        with open(os.path.join(d, name), "wb") as f:
            f.write(certs[name])
    config.load_cert_chain(os.path.join(d, "cert"), os.path.join(d, "key"))

    async def start():
        return await serve("127.0.0.1", 0, configuration=config, create_protocol=Echo, retry=retry)
    server = lt.run(start())
    return server, closed


def server_port(server) -> int:
    return server._transport.get_extra_info("sockname")[1]


async def aioquic_echo_client(port: int, certs, data: bytes, *, close_code: int = 0, timeout=60,
                              offer: list[str] | None = None, with_suite: bool = False):
    """aioquic's own connect() on CPython: echo ``data`` once; returns the echoed bytes' SHA-256
    (with ``with_suite``: (negotiated cipher suite name, SHA-256)). ``offer``: the cipher suites
    to offer, in that order (aioquic's default when None)."""
    from aioquic.asyncio import QuicConnectionProtocol, connect
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import StreamDataReceived
    from aioquic.tls import CipherSuite

    class Client(QuicConnectionProtocol):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.buf = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def quic_event_received(self, event):
            if isinstance(event, StreamDataReceived):
                self.buf += event.data
                if event.end_stream and not self.done.done():
                    self.done.set_result(bytes(self.buf))

    config = QuicConfiguration(is_client=True, alpn_protocols=["echo"], server_name="localhost",
                               idle_timeout=timeout)
    if offer is not None:
        config.cipher_suites = [CipherSuite[name] for name in offer]
    config.load_verify_locations(cadata=certs["ca"])
    async with connect("127.0.0.1", port, configuration=config, create_protocol=Client) as client:
        suite = client._quic.tls.key_schedule.cipher_suite.name
        sid = client._quic.get_next_available_stream_id()
        client._quic.send_stream_data(sid, data, end_stream=True)
        client.transmit()
        echoed = await asyncio.wait_for(client.done, timeout)
        client.close(error_code=close_code, reason_phrase="host client done")
    digest = hashlib.sha256(echoed).hexdigest()
    return (suite, digest) if with_suite else digest


class TamperProxy:
    """A UDP relay between one client and a server that corrupts one byte in every Nth
    server-to-client datagram (after the handshake), counting what it did."""

    def __init__(self, upstream_port: int, every: int = 7):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.upstream = ("127.0.0.1", upstream_port)
        self.every = every
        self.client = None
        self.tampered = 0
        self.relayed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        n = 0
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            if addr == self.upstream:
                if self.client is None:
                    continue
                n += 1
                # short-header (1-RTT) packets only, so the handshake itself stays intact
                if not data[0] & 0x80 and n % self.every == 0:
                    data = bytearray(data)
                    data[-5] ^= 0x5A
                    data = bytes(data)
                    self.tampered += 1
                self.sock.sendto(data, self.client)
            else:
                self.client = addr
                self.sock.sendto(data, self.upstream)
            self.relayed += 1

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()
