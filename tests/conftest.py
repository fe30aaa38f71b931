"""Shared fixtures: the runtimes (CPython, Pyodide in Node, Chromium IWA) and loopback peers."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtimes import ALL_RUNTIMES, available_packages, pyodide_dist, start_node_runner  # noqa: E402

def pytest_addoption(parser):
    parser.addoption("--runtimes", default=os.environ.get("SOCKETIWA_RUNTIMES", "cpython,node,iwa"),
                     help=f"comma-separated runtimes for @everywhere tests: {','.join(ALL_RUNTIMES)}")
    parser.addoption("--deep", action="store_true", default=False,
                     help="long runs of the property-based tests (20x the examples)")


def pytest_configure(config):
    config.addinivalue_line("markers", "multicast: needs a multicast route on loopback")
    config.addinivalue_line("markers", "pyodide_packages(*names): packages the body loads in Pyodide")
    # `socketiwa run` keeps installed apps in per-app Chromium profiles: tests start from none, as a
    # new machine does, instead of reusing installs left by an earlier session.
    if "SOCKETIWA_PROFILES" not in os.environ:
        import tempfile
        config._socketiwa_profiles = tempfile.mkdtemp(prefix="socketiwa-test-profiles-")
        os.environ["SOCKETIWA_PROFILES"] = config._socketiwa_profiles


def pytest_unconfigure(config):
    profiles = getattr(config, "_socketiwa_profiles", None)
    if profiles:
        import shutil
        shutil.rmtree(profiles, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    if config.getoption("--deep"):  # long property runs: no per-test timeout
        for item in items:
            if item.name.startswith("test_property_"):
                item.add_marker(pytest.mark.timeout(0))


def pytest_runtest_setup(item):
    callspec = getattr(item, "callspec", None)
    runtime = callspec.params.get("runtime_env") if callspec else None
    mark = item.get_closest_marker("pyodide_packages")
    if runtime in (None, "cpython") or mark is None:
        return
    missing = [p for p in mark.args if p not in available_packages(pyodide_dist())]
    if missing:
        pytest.skip(f"{', '.join(missing)} not built for Pyodide: run build-wasm.sh")


def selected_runtimes(config) -> list[str]:
    names = [r.strip() for r in config.getoption("--runtimes").split(",") if r.strip()]
    bad = [n for n in names if n not in ALL_RUNTIMES]
    if bad:
        raise pytest.UsageError(f"unknown runtimes {bad}; choose from {ALL_RUNTIMES}")
    return names


def pytest_generate_tests(metafunc):
    if "runtime_env" in metafunc.fixturenames:
        metafunc.parametrize("runtime_env", selected_runtimes(metafunc.config), indirect=True,
                             scope="session")


@dataclass
class RuntimeEnv:
    name: str
    runner: Any = None


_runners: dict[str, Any] = {}


@pytest.fixture(scope="session")
def runtime_env(request):
    name = request.param
    if name == "cpython":
        return RuntimeEnv(name)
    if name not in _runners:
        if name == "node":
            _runners[name] = start_node_runner()
        else:
            from iwa.runner import start_iwa_runner  # tests/iwa/runner.py
            _runners[name] = start_iwa_runner()
        request.session.config.add_cleanup(_runners[name].quit)
    return RuntimeEnv(name, _runners[name])


# ---------------------------------------------------------------- loopback peers (plain sockets,
# independent of socketiwa, each in its own thread)
class _Peer:
    """A serving thread; ``target(stop_event)`` runs until the event is set."""

    def __init__(self, target, sock):
        self.sock = sock
        self.stop = threading.Event()
        self.thread = threading.Thread(target=target, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(2)


@pytest.fixture
def udp_echo():
    """A UDP echo server on 127.0.0.1: returns (address, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)

    def serve(stop):
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65535)
                sock.sendto(data, addr)
            except TimeoutError:
                continue
            except OSError:
                return
    peer = _Peer(serve, sock)
    yield ("127.0.0.1", sock.getsockname()[1])
    peer.close()


@pytest.fixture
def tcp_echo():
    """A TCP echo server on 127.0.0.1 (one thread per client): returns (address, port)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    srv.settimeout(0.2)
    clients: list[socket.socket] = []

    def echo(conn):
        with conn:
            while True:
                try:
                    data = conn.recv(262144)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def serve(stop):
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            clients.append(conn)
            threading.Thread(target=echo, args=(conn,), daemon=True).start()
    peer = _Peer(serve, srv)
    yield ("127.0.0.1", srv.getsockname()[1])
    peer.close()
    for c in clients:
        try:
            c.close()
        except OSError:
            pass


@pytest.fixture
def closed_port():
    """A loopback TCP/UDP port with nothing listening."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def multicast_route_ok() -> bool:
    try:
        out = subprocess.run(["ip", "route", "get", "239.255.0.1"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    # Only over loopback: multicast must never leave this machine.
    return out.returncode == 0 and " dev lo " in out.stdout


@pytest.fixture
def multicast_group():
    if not multicast_route_ok():
        pytest.skip("multicast is not routed to loopback here; run the tests via scripts/netns.sh")
    return "239.255.42.99"


@pytest.fixture
def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def free_tcp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _LoopThread:
    """An asyncio loop in a thread, for CPython socketiwa peers that tests talk to."""

    def __init__(self):
        import asyncio
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=10):
        import asyncio
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def event_server():
    """A socketiwa TCP server on CPython (native backend) speaking the event protocol.

    'echo' acks its payload; 'join' puts the connection in a room and acks; 'shout' sends
    'news' to the room given in the payload; 'slow' never acks; plain messages are echoed.
    Returns (address, port)."""
    import socketiwa
    lt = _LoopThread()

    async def start():
        srv = await socketiwa.create_tcp_server("127.0.0.1", 0)

        def on_connection(conn):
            conn.on("message", lambda data: conn.send(data))
            conn.on("echo", lambda payload, ack: ack and ack(payload))
            conn.on("join", lambda room, ack: (conn.join(room), ack and ack(sorted(conn.rooms))))

            async def shout(payload, ack):
                n = await srv.to(payload["room"]).emit("news", payload["text"])
                if ack:
                    ack(n)
            conn.on("shout", shout)
        srv.on("connection", on_connection)
        return srv
    srv = lt.run(start())
    yield ("127.0.0.1", srv.local_port)
    lt.run(srv.close())
    lt.stop()


@pytest.fixture
def udp_event_peer():
    """A socketiwa bound UDP socket on CPython that acks 'echo' events and echoes messages."""
    import socketiwa
    lt = _LoopThread()

    async def start():
        sock = await socketiwa.create_udp(local_address="127.0.0.1")
        sock.on("message", lambda data, rinfo: sock.send(data, rinfo.port, rinfo.address))
        sock.on("echo", lambda payload, rinfo, ack: ack and ack({"echo": payload, "from_port": rinfo.port}))
        return sock
    sock = lt.run(start())
    yield ("127.0.0.1", sock.local_port)
    lt.run(sock.close())
    lt.stop()
