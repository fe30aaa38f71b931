"""HTTP/3 peers on CPython written on plain aioquic (``H3Connection`` on aioquic's own asyncio
transport, no socketiwa), so the runtime under test talks to an independent implementation.

Server routes (``start_aioquic_h3_server``):
  GET  /hello            200, body ``hello <path>``, echoes request header x-test as x-echo
  POST /echo             streams the body back as it arrives; trailers x-sha256, x-length
  GET  /bytes?n=N&seed=S N pseudo-random bytes (random.Random(S)), content-length set
  GET  /reset            response headers, then RESET_STREAM with code 0x10c
  CONNECT :protocol=echo-tunnel  200; echoes tunnel data (FIN for FIN) and HTTP datagrams
                         (under 100 bytes prefixed with b"echo:")
  CONNECT :protocol=webtransport /wt  WebTransport: opens a uni stream "server-uni-hello" and a
                         bidi stream "server-bidi-hello"; echoes datagrams ("echo:" prefix) and
                         client bidi streams; answers a client uni stream with a new uni stream
                         "uni-echo:<data>"; the datagram "close-me" closes the session with
                         (4242, "server-bye"); close capsules it receives go to ``wt_closes``
  CONNECT :protocol=websocket /ws  RFC 9220 WebSocket (frames by wsproto): echoes text and
                         binary messages, answers pings, the text "close-me" closes with
                         (4001, "server-bye"); answers sec-websocket-key with -accept
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import random
import tempfile
import time

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.buffer import Buffer, encode_uint_var
from aioquic.h3.events import (DatagramReceived, DataReceived, HeadersReceived,
                               WebTransportStreamDataReceived)
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, StreamReset

RESET_CODE = 0x10C
CLOSE_WEBTRANSPORT_SESSION = 0x2843
wt_closes: list[tuple[int, str]] = []   # close capsules the plain server received


def _cert_files(certs) -> tuple[str, str]:
    d = tempfile.mkdtemp()
    paths = []
    for name in ("cert", "key"):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(certs[name])
        paths.append(path)
    return paths[0], paths[1]


class _PlainH3Server(QuicConnectionProtocol):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.http: H3Connection | None = None
        self.kind: dict[int, str] = {}
        self.sha: dict[int, tuple] = {}

    def quic_event_received(self, event):
        if isinstance(event, ProtocolNegotiated):
            self.http = H3Connection(self._quic, enable_webtransport=True)
        if isinstance(event, StreamReset):
            self.kind.pop(event.stream_id, None)
        if self.http is None:
            return
        for ev in self.http.handle_event(event):
            self.h3_event(ev)
        self.transmit()

    def h3_event(self, ev):
        http = self.http
        if isinstance(ev, HeadersReceived) and ev.stream_id not in self.kind:
            h = dict(ev.headers)
            method, path = h.get(b":method"), h.get(b":path", b"/")
            sid = ev.stream_id
            if method == b"CONNECT" and h.get(b":protocol") == b"webtransport":
                self.kind[sid] = "wt"
                self.wt_uni = {}
                http.send_headers(sid, [(b":status", b"200"), (b"sec-webtransport-http3-draft", b"draft02")])
                uni = http.create_webtransport_stream(sid, is_unidirectional=True)
                self._quic.send_stream_data(uni, b"server-uni-hello", end_stream=True)
                bidi = http.create_webtransport_stream(sid, is_unidirectional=False)
                self._quic.send_stream_data(bidi, b"server-bidi-hello", end_stream=True)
            elif method == b"CONNECT" and h.get(b":protocol") == b"websocket":
                import wsproto
                self.kind[sid] = "ws"
                self.ws = getattr(self, "ws", {})
                self.ws[sid] = wsproto.Connection(wsproto.ConnectionType.SERVER)
                headers = [(b":status", b"200")]
                if b"sec-websocket-key" in h:
                    import base64
                    headers.append((b"sec-websocket-accept", base64.b64encode(hashlib.sha1(
                        h[b"sec-websocket-key"] + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())))
                http.send_headers(sid, headers)
            elif method == b"CONNECT" and h.get(b":protocol") == b"echo-tunnel":
                self.kind[sid] = "tunnel"
                http.send_headers(sid, [(b":status", b"200")])
            elif path.startswith(b"/echo"):
                self.kind[sid] = "echo"
                self.sha[sid] = (hashlib.sha256(), [0])
                http.send_headers(sid, [(b":status", b"200"), (b"x-method", method)])
                if ev.stream_ended:
                    self._finish_echo(sid)
            elif path.startswith(b"/bytes"):
                q = dict(p.split("=") for p in path.decode().split("?", 1)[1].split("&"))
                data = random.Random(int(q["seed"])).randbytes(int(q["n"]))
                http.send_headers(sid, [(b":status", b"200"), (b"content-length", str(len(data)).encode())])
                http.send_data(sid, data, end_stream=True)
            elif path.startswith(b"/reset"):
                http.send_headers(sid, [(b":status", b"200")])
                self._quic.reset_stream(sid, RESET_CODE)
            else:
                body = b"hello " + path
                headers = [(b":status", b"200"), (b"content-length", str(len(body)).encode())]
                if b"x-test" in h:
                    headers.append((b"x-echo", h[b"x-test"]))
                http.send_headers(sid, headers)
                http.send_data(sid, body, end_stream=True)
        elif isinstance(ev, DataReceived):
            kind = self.kind.get(ev.stream_id)
            if kind == "echo":
                h, n = self.sha[ev.stream_id]
                h.update(ev.data)
                n[0] += len(ev.data)
                if ev.data:
                    self.http.send_data(ev.stream_id, ev.data, end_stream=False)
                if ev.stream_ended:
                    self._finish_echo(ev.stream_id)
            elif kind == "tunnel":
                self.http.send_data(ev.stream_id, ev.data, end_stream=ev.stream_ended)
            elif kind == "ws":
                self._ws_data(ev.stream_id, ev.data, ev.stream_ended)
            elif kind == "wt":
                buf = Buffer(data=ev.data)
                while not buf.eof():   # capsules; a whole one per read is enough on loopback
                    ctype, length = buf.pull_uint_var(), buf.pull_uint_var()
                    payload = buf.pull_bytes(length)
                    if ctype == CLOSE_WEBTRANSPORT_SESSION:
                        wt_closes.append((int.from_bytes(payload[:4], "big"), payload[4:].decode()))
                if ev.stream_ended:
                    self._quic.send_stream_data(ev.stream_id, b"", end_stream=True)
                    self.kind.pop(ev.stream_id, None)
        elif isinstance(ev, WebTransportStreamDataReceived):
            if ev.stream_id % 4 == 0:   # client bidi: echo
                self._quic.send_stream_data(ev.stream_id, ev.data, end_stream=ev.stream_ended)
            else:
                self.wt_uni[ev.stream_id] = self.wt_uni.get(ev.stream_id, b"") + ev.data
                if ev.stream_ended:
                    out = self.http.create_webtransport_stream(ev.session_id, is_unidirectional=True)
                    self._quic.send_stream_data(out, b"uni-echo:" + self.wt_uni.pop(ev.stream_id),
                                                end_stream=True)
        elif isinstance(ev, DatagramReceived):
            if self.kind.get(ev.stream_id) == "wt":
                if ev.data == b"close-me":
                    payload = (4242).to_bytes(4, "big") + b"server-bye"
                    self.http.send_data(ev.stream_id, encode_uint_var(CLOSE_WEBTRANSPORT_SESSION)
                                        + encode_uint_var(len(payload)) + payload, end_stream=True)
                    self.kind[ev.stream_id] = "wt-closed"
                else:
                    self.http.send_datagram(ev.stream_id, b"echo:" + ev.data)
            elif self.kind.get(ev.stream_id) == "tunnel":
                # small ones tagged, large ones as they came (so the largest that fits fits back)
                self.http.send_datagram(ev.stream_id, b"echo:" + ev.data if len(ev.data) < 100 else ev.data)

    def _ws_data(self, sid, data, ended):
        from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
        conn = self.ws[sid]
        conn.receive_data(data)
        out = b""
        for e in conn.events():
            if isinstance(e, TextMessage):
                if e.data == "close-me":
                    out += conn.send(CloseConnection(code=4001, reason="server-bye"))
                else:
                    out += conn.send(TextMessage(data=e.data, message_finished=e.message_finished))
            elif isinstance(e, BytesMessage):
                out += conn.send(BytesMessage(data=e.data, message_finished=e.message_finished))
            elif isinstance(e, Ping):
                out += conn.send(e.response())
            elif isinstance(e, CloseConnection):
                if conn.state.name == "REMOTE_CLOSING":
                    out += conn.send(e.response())
                self.http.send_data(sid, out, end_stream=True)
                self.kind.pop(sid, None)
                return
        if out:
            self.http.send_data(sid, out, end_stream=False)

    def _finish_echo(self, sid):
        h, n = self.sha.pop(sid)
        self.http.send_headers(sid, [(b"x-sha256", h.hexdigest().encode()),
                                     (b"x-length", str(n[0]).encode())], end_stream=True)
        self.kind.pop(sid, None)


def start_aioquic_h3_server(lt, certs):
    """aioquic's serve() on CPython with the routes above; returns the QuicServer."""
    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536)
    config.load_cert_chain(*_cert_files(certs))

    async def start():
        return await serve("127.0.0.1", 0, configuration=config, create_protocol=_PlainH3Server)
    return lt.run(start())


class _PlainH3Client(QuicConnectionProtocol):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.http = H3Connection(self._quic, enable_webtransport=True)
        self.exchanges: dict[int, dict] = {}

    def quic_event_received(self, event):
        for ev in self.http.handle_event(event):
            x = self.exchanges.get(getattr(ev, "stream_id", None))
            if x is None:
                continue
            if isinstance(ev, HeadersReceived):
                if x["headers"] is None:
                    x["headers"] = dict(ev.headers)
                    x["got_headers"].set()
                else:
                    x["trailers"] = dict(ev.headers)
            elif isinstance(ev, DataReceived):
                x["body"] += ev.data
            elif isinstance(ev, DatagramReceived):
                x["datagrams"].put_nowait(ev.data)
            if getattr(ev, "stream_ended", False):
                x["done"].set()
        if isinstance(event, StreamReset) and event.stream_id in self.exchanges:
            x = self.exchanges[event.stream_id]
            x["reset"] = event.error_code
            x["got_headers"].set()
            x["done"].set()

    def start(self, headers, body: bytes | None = None, end: bool = True) -> int:
        sid = self._quic.get_next_available_stream_id()
        self.exchanges[sid] = {"headers": None, "trailers": None, "body": bytearray(), "reset": None,
                               "got_headers": asyncio.Event(), "done": asyncio.Event(),
                               "datagrams": asyncio.Queue()}
        self.http.send_headers(sid, headers, end_stream=end and not body)
        if body:
            self.http.send_data(sid, body, end_stream=end)
        self.transmit()
        return sid

    async def fetch(self, method: bytes, path: bytes, body: bytes | None = None, headers=()) -> dict:
        sid = self.start([(b":method", method), (b":scheme", b"https"), (b":authority", b"localhost"),
                          (b":path", path), *headers], body)
        await asyncio.wait_for(self.exchanges[sid]["done"].wait(), 60)
        return self.exchanges.pop(sid)


async def aioquic_h3_client_session(port: int, certs, *, upload: bytes, timeout: float = 60) -> dict:
    """aioquic's own HTTP/3 client on CPython exercising a server in the runtime (routes of
    tests/test_h3.py's ASGI app). Returns what it saw, for the test to assert on."""
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost",
                               max_datagram_frame_size=65536, idle_timeout=timeout)
    config.load_verify_locations(cadata=certs["ca"])
    out = {}
    async with connect("127.0.0.1", port, configuration=config, create_protocol=_PlainH3Client,
                       wait_connected=True) as client:
        x = await client.fetch(b"GET", b"/hello?who=aioquic", headers=[(b"x-test", b"abc")])
        out["hello"] = (x["headers"][b":status"], x["headers"].get(b"x-echo"), bytes(x["body"]))
        x = await client.fetch(b"POST", b"/echo", upload)
        out["echo"] = (x["headers"][b":status"], hashlib.sha256(x["body"]).hexdigest(),
                       (x["trailers"] or {}).get(b"x-sha256", b"").decode())
        xs = await asyncio.gather(*[client.fetch(b"GET", b"/hello/%d" % i) for i in range(8)])
        out["concurrent"] = [bytes(x["body"]) for x in xs]
        # Extended CONNECT: the server must have announced it
        out["settings_connect"] = client.http.received_settings.get(0x8)
        sid = client.start([(b":method", b"CONNECT"), (b":protocol", b"echo-tunnel"), (b":scheme", b"https"),
                            (b":authority", b"localhost"), (b":path", b"/tunnel")], end=False)
        x = client.exchanges[sid]
        await asyncio.wait_for(x["got_headers"].wait(), timeout)
        out["tunnel_status"] = x["headers"][b":status"]
        client.http.send_datagram(sid, b"ping-1")
        client.transmit()
        out["tunnel_datagram"] = await asyncio.wait_for(x["datagrams"].get(), 10)
        client.http.send_data(sid, b"tunnel bytes", end_stream=True)
        client.transmit()
        await asyncio.wait_for(x["done"].wait(), timeout)
        out["tunnel_data"] = bytes(x["body"])
        x = await client.fetch(b"GET", b"/fail")
        out["fail_status"] = x["headers"][b":status"]
        x = await client.fetch(b"GET", b"/done")
        out["done"] = x["headers"][b":status"]
        client.close(error_code=0x100, reason_phrase="aioquic client done")
    return out


def wait_for_h3_server(port: int, timeout: float = 90) -> None:
    """Until an HTTP/3 handshake with 127.0.0.1:port succeeds (plain aioquic, no checks of the
    certificate: this only learns that the server listens, so Chromium's first try works)."""
    import asyncio
    import ssl

    from aioquic.asyncio import connect
    from aioquic.h3.connection import H3_ALPN
    from aioquic.quic.configuration import QuicConfiguration

    async def attempt():
        config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE)
        async with connect("127.0.0.1", port, configuration=config) as c:
            c.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            asyncio.run(asyncio.wait_for(attempt(), 2))
            return
        except Exception:   # noqa: BLE001 - not up yet
            time.sleep(0.3)
    raise TimeoutError(f"no HTTP/3 server on port {port}")
