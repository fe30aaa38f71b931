"""Every program in examples/ run end to end as the README says, checking what it prints.

cpython: ``python examples/NAME/main.py`` (or ``examples/quic/NAME.py``) in a subprocess.
iwa:     ``python -m socketiwa run examples/NAME [-- ARGS]``: built, installed in headless
         Chromium, run in Pyodide inside the Isolated Web App. Where a server runs in the IWA,
         its clients are CPython programs and Chromium's own clients (a second, plain Chromium).
(node: the examples are whole programs for the CLI; Pyodide under Node is not a target here.)
"""
from __future__ import annotations

import base64
import hashlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import chromium_clients
import h3_peers

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RUNTIMES = ("cpython", "iwa")


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    selected = request.config.getoption("--runtimes").split(",")
    if request.param not in selected:
        pytest.skip(f"{request.param} not selected (--runtimes)")
    if request.param == "iwa":
        from runtimes import available_packages, pyodide_dist
        if "aioquic" not in available_packages(pyodide_dist()):
            pytest.skip("aioquic not built for Pyodide: run build-wasm.sh")
    return request.param


def env_for(tmp_path: Path) -> dict:
    # the app's signing key goes to a private config dir; PYTHONPATH keeps this checkout's pkg/
    return dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), PYTHONUNBUFFERED="1",
                PYTHONPATH=str(ROOT / "pkg") + os.pathsep + os.environ.get("PYTHONPATH", ""))


def command(runtime: str, example: str, *args: str) -> list[str]:
    """The README's command for ``example`` ("udp_echo" or "quic/zero_rtt") on ``runtime``."""
    app, _, program = example.partition("/")
    if runtime == "cpython":
        script = EXAMPLES / app / f"{program or 'main'}.py"
        return [sys.executable, str(script), *args]
    extra = [program, *args] if program else list(args)
    return [sys.executable, "-m", "socketiwa", "-q", "run", str(EXAMPLES / app),
            *(["--", *extra] if extra else [])]


def run(runtime: str, example: str, *args: str, tmp_path: Path, timeout: float = 300) -> str:
    out = subprocess.run(command(runtime, example, *args), cwd=ROOT, env=env_for(tmp_path),
                         capture_output=True, text=True, timeout=timeout)
    print(out.stdout, out.stderr[-3000:])
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr[-3000:])
    assert "Traceback" not in out.stdout + out.stderr      # no task died on the way
    return out.stdout


class Running:
    """A long-running example (a server): its stdout lines as they come; stopped with SIGTERM
    (``socketiwa run`` then closes its Chromium)."""

    def __init__(self, cmd: list[str], tmp_path: Path):
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env_for(tmp_path), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self._queue), daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def wait_for(self, pattern: str, timeout: float = 240) -> re.Match:
        """The first line (seen so far or coming) matching ``pattern``."""
        rx = re.compile(pattern)
        for line in self.lines:
            if m := rx.search(line):
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"exited ({self.proc.wait()}) before {pattern!r}: {self.lines} "
                                     f"{''.join(self.stderr)[-3000:]}")
            self.lines.append(line)
            if m := rx.search(line):
                return m
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s: {self.lines}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        while True:   # collect what is left
            try:
                line = self._queue.get(timeout=2)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        print("\n".join(self.lines), "".join(self.stderr)[-3000:])


@pytest.fixture
def running(tmp_path):
    started: list[Running] = []

    def start(runtime: str, example: str, *args: str) -> Running:
        r = Running(command(runtime, example, *args), tmp_path)
        started.append(r)
        return r
    yield start
    for r in started:
        r.stop()


# ------------------------------------------------------------------- sockets


def test_udp_echo(runtime, tmp_path):
    out = run(runtime, "udp_echo", tmp_path=tmp_path)
    backend = "native" if runtime == "cpython" else "directsockets"
    assert f"socketiwa backend: {backend}" in out
    port = re.search(r"echo server on 127\.0\.0\.1:(\d+)", out).group(1)
    for i in range(5):
        assert f"reply from 127.0.0.1:{port}: 'ping {i}'" in out
    assert re.search(r"5/5 echoed, round trip median [\d.]+ ms", out)


def test_udp_echo_client_in_the_iwa_against_a_cpython_server(runtime, running, tmp_path, free_udp_port):
    if runtime != "iwa":
        pytest.skip("the cross-runtime pairing (the CPython one is test_udp_echo)")
    server = running("cpython", "udp_echo", "server", "--port", str(free_udp_port))
    server.wait_for(f"echo server on 127.0.0.1:{free_udp_port}", 30)
    out = run("iwa", "udp_echo", "client", "--port", str(free_udp_port), "--count", "3", tmp_path=tmp_path)
    assert "socketiwa backend: directsockets" in out
    assert [f"reply from 127.0.0.1:{free_udp_port}: 'ping {i}'" in out for i in range(3)] == [True] * 3
    assert "3/3 echoed" in out


CHAT_LINES = ["alice joined #python, members now: alice", "bob joined #python, members now: alice, bob",
              "carol joined #rust, members now: carol", "alice's message reached 2 connections",
              "alice heard: ['[#python] alice: hello, pythonistas']",
              "bob heard: ['[#python] alice: hello, pythonistas']",
              "carol heard: ['[#rust] carol: anyone into borrow checkers?']"]


def test_tcp_chat(runtime, tmp_path):
    out = run(runtime, "tcp_chat", tmp_path=tmp_path)
    lines = out.splitlines()
    for expected in CHAT_LINES:
        assert expected in lines
    assert {"alice left", "bob left", "carol left"} <= set(lines)   # the server saw them go


def test_tcp_chat_server_in_the_iwa_with_cpython_clients(runtime, running, tmp_path, free_tcp_port):
    if runtime != "iwa":
        pytest.skip("the cross-runtime pairing (the CPython one is test_tcp_chat)")
    server = running("iwa", "tcp_chat", "server", "--port", str(free_tcp_port))
    server.wait_for(f"chat server on 127.0.0.1:{free_tcp_port}")
    out = run("cpython", "tcp_chat", "clients", "--port", str(free_tcp_port), tmp_path=tmp_path)
    assert "socketiwa backend: native" in out
    for expected in CHAT_LINES:
        assert expected in out.splitlines()
    server.wait_for("carol left", 30)               # the server in the IWA logged the room traffic
    assert "bob joined #python" in server.lines and "socketiwa backend: directsockets" in server.lines


@pytest.mark.multicast
def test_multicast_discovery(runtime, tmp_path, running, multicast_group):
    if runtime == "cpython":
        out = run("cpython", "multicast_discovery", tmp_path=tmp_path, timeout=60)
        assert re.search(r"^speaker: found camera at [\d.]+ \(service port 8554\)$", out, re.M)
        assert re.search(r"^camera: found speaker at [\d.]+ \(service port 7000\)$", out, re.M)
        assert "camera knows ['speaker']" in out and "speaker knows ['camera']" in out
        return
    # a node in the IWA and one on CPython find each other
    host = running("cpython", "multicast_discovery", "node", "--name", "host-node", "--service-port", "1111",
                   "--seconds", "240", "--until-peers", "1")
    out = run("iwa", "multicast_discovery", "node", "--name", "iwa-node", "--service-port", "2222",
              "--seconds", "60", "--until-peers", "1", tmp_path=tmp_path)
    assert "socketiwa backend: directsockets" in out
    assert re.search(r"^iwa-node: found host-node at [\d.]+ \(service port 1111\)$", out, re.M)
    assert "iwa-node knows ['host-node']" in out
    host.wait_for(r"^host-node: found iwa-node at [\d.]+ \(service port 2222\)$", 60)


MEDIA_SENT = re.compile(r"^sent source (?P<source>[0-9a-f]{8}): (?P<count>\d+) packets of \d+ bytes at "
                        r"(?P<rate>[\d.]+) packets/s \(\d+ datagrams\); on purpose (?P<dropped>\d+) dropped, "
                        r"(?P<duplicated>\d+) duplicated, (?P<reordered>\d+) reordered$", re.M)
MEDIA_FINAL = (r"^final source {source}: (?P<received>\d+)/(?P<total>\d+) received, (?P<lost>\d+) lost, "
               r"(?P<duplicates>\d+) duplicates, (?P<out_of_order>\d+) out of order, (?P<late>\d+) late; "
               r"(?P<rate>[\d.]+) packets/s, \d+ kbit/s, jitter [\d.]+ ms$")


def check_media_counters(sender_out: str, receiver_out: str) -> dict:
    """The receiver's counters for the sender's stream equal what the sender did on purpose:
    every packet it dropped is counted lost, every copy a duplicate, every held-back packet out
    of order (on loopback nothing else is lost)."""
    sent = MEDIA_SENT.search(sender_out)
    assert sent, sender_out
    final = re.search(MEDIA_FINAL.format(source=sent["source"]), receiver_out, re.M)
    assert final, receiver_out
    count, dropped = int(sent["count"]), int(sent["dropped"])
    assert int(final["total"]) == count
    assert (int(final["received"]), int(final["lost"])) == (count - dropped, dropped)
    assert int(final["duplicates"]) == int(sent["duplicated"]) > 0
    assert int(final["out_of_order"]) == int(sent["reordered"]) > 0
    assert int(final["late"]) == 0 and float(final["rate"]) > 0
    return {"sent": sent.groupdict(), "received": final.groupdict()}


@pytest.mark.multicast
def test_multicast_media(runtime, tmp_path, multicast_group):
    """The one-command demo: a sender and a receiver in one process (impairing its own stream)."""
    out = run(runtime, "multicast_media", tmp_path=tmp_path, timeout=240)
    backend = "native" if runtime == "cpython" else "directsockets"
    assert f"socketiwa backend: {backend}; group 239.255.70.78:5072" in out
    counters = check_media_counters(out, out)
    assert counters["sent"]["count"] == "300"
    assert re.search(r"^source [0-9a-f]{8}: \d+/\? received", out, re.M)     # a report while it runs


@pytest.mark.multicast
def test_multicast_media_across_runtimes(runtime, tmp_path, running, multicast_group):
    """A receiver in the IWA counts a CPython sender's stream; a CPython receiver counts the
    stream of a sender in the IWA."""
    if runtime != "iwa":
        pytest.skip("the cross-runtime pairing (the CPython one is test_multicast_media)")
    impair = ("--rate", "200", "--count", "400", "--size", "1200", "--drop", "37", "--duplicate", "23",
              "--reorder", "29")
    receiver = running("iwa", "multicast_media", "receive", "--seconds", "200")
    receiver.wait_for(r"^receiving on 239\.255\.70\.78:5072$")
    sender_out = run("cpython", "multicast_media", "send", *impair, tmp_path=tmp_path)
    receiver.wait_for(r"^final source ", 60)
    receiver.stop()
    assert "socketiwa backend: directsockets; group 239.255.70.78:5072" in receiver.lines
    check_media_counters(sender_out, "\n".join(receiver.lines))

    receiver = running("cpython", "multicast_media", "receive", "--seconds", "200")
    receiver.wait_for(r"^receiving on 239\.255\.70\.78:5072$", 30)
    sender_out = run("iwa", "multicast_media", "send", *impair, tmp_path=tmp_path)
    assert "socketiwa backend: directsockets" in sender_out
    receiver.wait_for(r"^final source ", 60)
    receiver.stop()
    check_media_counters(sender_out, "\n".join(receiver.lines))


# ------------------------------------------------------------------- QUIC family


def test_http3_app(runtime, tmp_path):
    out = run(runtime, "quic/http3_app", tmp_path=tmp_path)
    size = (EXAMPLES / "quic" / "http3_app.py").stat().st_size
    assert "GET / -> 200 (HTTP/3)" in out and re.search(r"index: 200 text/html \d+ bytes", out)
    assert re.search(rf"download http3_app.py: 200, {size} bytes in [\d.]+ ms, identical: True", out)
    assert "POST /upload -> 200 (HTTP/3)" in out
    digest = hashlib.sha256(b"".join(bytes([i]) * 65536 for i in range(16))).hexdigest()
    assert f"upload: 200 1048576 bytes, sha256 {digest}; matches: True" in out
    assert "GET /files/nope -> 404 (HTTP/3)" in out and "missing file: 404" in out


def test_webtransport_echo(runtime, tmp_path):
    out = run(runtime, "quic/webtransport_echo", tmp_path=tmp_path)
    assert "session from a non-browser client on /echo" in out
    assert [f"datagram: echo:ping {i}" in out for i in range(5)] == [True] * 5
    assert "bidirectional stream: sent 100000 bytes, got 100000 back, identical: True" in out
    assert "unidirectional stream answered: uni-echo:hello" in out
    assert "session closed: code 4000, reason 'server-bye', by the server" in out
    assert "closed by the server: (4000, 'server-bye')" in out


def test_websocket_h3(runtime, tmp_path):
    out = run(runtime, "quic/websocket_h3", tmp_path=tmp_path)
    lines = out.splitlines()
    assert "websocket open on /ws (HTTP/3)" in lines
    for expected in ("text: HELLO OVER HTTP/3", "binary: [0, 1, 2, 3, 4, 5, 6, 7]", "fragmented: FRAGMENTED",
                     "closed by the server: (4001, 'server-bye')", "websocket closed by the client: 1000 'done'",
                     "closed by the client: (1000, 'done')"):
        assert expected in lines
    assert re.search(r"^ping round trip: [\d.]+ ms$", out, re.M) and re.search(r"^100 echoes in \d+ ms$", out, re.M)


def test_zero_rtt(runtime, tmp_path):
    out = run(runtime, "quic/zero_rtt", tmp_path=tmp_path)
    rows = dict(re.findall(r"^(full handshake|resumed, 0-RTT|resumed, POST) +(.*)$", out, re.M))
    assert re.match(r"GET +[\d.]+ ms  resumed=False early_data_accepted=False  -> 'hello, after the handshake'",
                    rows["full handshake"])
    assert re.match(r"GET +[\d.]+ ms  resumed=True early_data_accepted=True  -> 'hello, early'",
                    rows["resumed, 0-RTT"])
    # the POST rode 0-RTT, was refused with 425 and sent again after the handshake
    assert re.match(r"POST +[\d.]+ ms  resumed=True early_data_accepted=True  -> 'hello, after the handshake'",
                    rows["resumed, POST"])
    assert ("server acted on: GET /hello early_data=False; GET /hello early_data=True; "
            "POST /hello early_data=False") in out
    assert re.search(r"^0-RTT saved -?[\d.]+ ms of [\d.]+ ms on the first request$", out, re.M)


# ------------------------------------------------------------------- browsers as clients

FETCH_FROM_FILE_SERVER = r"""
async (base) => {
  const nav = performance.getEntriesByType("navigation")[0];
  const r = await fetch(base + "/files/http3_app.py", {cache: "no-store"});
  const body = new Uint8Array(await r.arrayBuffer());
  const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", body))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const entry = performance.getEntriesByName(base + "/files/http3_app.py").pop();
  return {navigation: nav.nextHopProtocol, title: document.title, status: r.status,
          fetchProtocol: entry ? entry.nextHopProtocol : null, length: body.length, digest,
          links: document.querySelectorAll("a").length};
}
"""


def test_chromium_downloads_from_the_http3_file_server(runtime, running, free_udp_port):
    """Chromium navigates to the example's index over HTTP/3 and downloads a file from it; the
    server runs on CPython or inside the IWA. (The example prints the flags Chromium needs.)"""
    server = running(runtime, "quic/http3_app", "serve", "--port", str(free_udp_port))
    server.wait_for(rf"serving https://127.0.0.1:{free_udp_port}/ over HTTP/3")
    flags = server.wait_for(r"^chromium flags: (.*)$").group(1).split()
    h3_peers.wait_for_h3_server(free_udp_port)
    base = f"https://127.0.0.1:{free_udp_port}"
    with chromium_clients.browser(flags) as b:
        page = b.open(base + "/", timeout=60)
        seen = b.run(page, FETCH_FROM_FILE_SERVER, base, timeout=60)
    data = (EXAMPLES / "quic" / "http3_app.py").read_bytes()
    assert seen == {"navigation": "h3", "title": "socketiwa h3 files", "status": 200, "fetchProtocol": "h3",
                    "length": len(data), "digest": hashlib.sha256(data).hexdigest(),
                    "links": seen["links"]}, seen
    assert seen["links"] >= 5      # the folder's files are listed
    server.wait_for(r"^GET /files/http3_app\.py -> 200 \(HTTP/3\)$", 30)
    server.wait_for(r"^GET / -> 200 \(HTTP/3\)$", 5)


def test_browser_page_webtransport_client(runtime, running, free_udp_port):
    """examples/quic/webtransport_page.html in a plain Chromium page (Chromium's own WebTransport)
    against webtransport_echo.py serving on CPython or inside the IWA."""
    from socketiwa._app.chromium import serve_dir
    server = running(runtime, "quic/webtransport_echo", "serve", "--port", str(free_udp_port))
    server.wait_for(rf"WebTransport echo on https://127.0.0.1:{free_udp_port}/echo")
    cert_hash = server.wait_for(r"certificate sha-256 \(serverCertificateHashes\): (\S+)").group(1)
    assert len(base64.b64decode(cert_hash)) == 32
    h3_peers.wait_for_h3_server(free_udp_port)
    http, http_port = serve_dir(EXAMPLES / "quic")
    try:
        with chromium_clients.browser() as b:
            query = f"port={free_udp_port}&hash={cert_hash.replace('+', '%2B').replace('/', '%2F')}"
            page = b.open(f"http://127.0.0.1:{http_port}/webtransport_page.html?{query}")
            result = b.run(page, "async () => await window.result", timeout=90)
            log = b.run(page, "async () => document.getElementById('log').textContent")
    finally:
        http.shutdown()
    print(log)
    assert "error" not in result, result
    assert result["datagrams"] == [f"echo:ping {i}" for i in range(5)]
    assert result["bidi"] == "hello over a bidirectional stream"
    assert result["uni"] == "uni-echo:hello over a unidirectional stream"
    assert result["closed"] == {"code": 4000, "reason": "server-bye"}
    assert "closed by the server: 4000 server-bye" in log
    server.wait_for(rf"^session from http://127\.0\.0\.1:{http_port} on /echo$", 10)
    server.wait_for(r"^session closed: code 4000, reason 'server-bye', by the server$", 10)


def test_chromium_websocket_over_h3_client(runtime, running, free_udp_port):
    server = running(runtime, "quic/websocket_h3", "serve", "--port", str(free_udp_port))
    server.wait_for(rf"WebSocket over HTTP/3 on wss://127.0.0.1:{free_udp_port}/ws")
    flags = server.wait_for(r"^chromium flags: (.*)$").group(1).split()
    h3_peers.wait_for_h3_server(free_udp_port)
    with chromium_clients.browser(flags) as b:
        page = b.open(f"https://127.0.0.1:{free_udp_port}/", timeout=60)   # the example's own page
        result = b.run(page, "async () => await window.result", timeout=60)
    assert result == {"got": ["HELLO FROM CHROMIUM"], "code": 4001, "reason": "server-bye"}, result
    # the server saw it arrive over HTTP/3 (Chromium's RFC 9220 form), not HTTP/1.1
    server.wait_for(r"^websocket open on /ws \(HTTP/3\)$", 10)
