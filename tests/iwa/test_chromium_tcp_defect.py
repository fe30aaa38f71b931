"""Chromium 156's TCPSocket write loss, pinned in plain JavaScript (docs/chromium-tcp-write-loss.md).

If Chromium fixes the defect this test fails: then the adapter's workaround (bridge/adapter.mjs,
TcpSender) and the Node harness's model of it (bridge/node/direct-sockets.mjs) can be retired.
"""
import socket
import threading
import time

import pytest

from iwa.runner import start_iwa_runner

TOTAL = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def runner():
    r = start_iwa_runner()
    yield r
    r.quit()


@pytest.fixture
def sink():
    srv = socket.create_server(("127.0.0.1", 0))
    received = {"bytes": 0}

    def serve():
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(1 << 20):
                received["bytes"] += len(data)
    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1], received
    srv.close()


def test_awaited_small_writes_are_lost(runner, sink):
    port, received = sink
    resolved_ms = runner.run_js(f"""
const s = globalThis.__lossProbe = new TCPSocket("127.0.0.1", {port}, {{noDelay: true}});
const w = (await s.opened).writable.getWriter();
const t0 = performance.now();
for (let i = 0; i < {TOTAL}; i += 16384) await w.write(new Uint8Array(16384));
return Math.round(performance.now() - t0);
""")
    deadline = time.monotonic() + 3
    while received["bytes"] < TOTAL and time.monotonic() < deadline:
        time.sleep(0.05)
    assert resolved_ms >= 0  # every write promise resolved ...
    assert received["bytes"] < TOTAL, "Chromium delivered every byte: the write-loss defect is gone"
    assert received["bytes"] % 16384 == 0  # ... and whole writes went missing


def test_pipe_size_is_measured_at_run_time(runner):
    assert runner.run_js("return await socketiwaBridge.tcpPipeBytes();") == 64 * 1024
