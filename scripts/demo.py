#!/usr/bin/env python3
"""The end-to-end demo: build the IWA, install it in headless Chromium, run Python in it that
opens a UDP socket and a TCP server, and talk to both from CPython. Prints the page's log and
saves a screenshot to build/demo.png."""
import asyncio
import base64
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
T0 = time.monotonic()


def say(msg):
    print(f"[{time.monotonic() - T0:5.1f}s] {msg}", flush=True)


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpython_peer(udp_port, tcp_port, results):
    """Plain CPython: a UDP datagram to the IWA, then a socketiwa TCP client with an event."""
    import socketiwa
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(0.2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "udp" not in results:
        u.sendto(b"hello from CPython", ("127.0.0.1", udp_port))
        try:
            results["udp"] = u.recvfrom(2048)[0]
        except TimeoutError:
            pass

    async def tcp():
        while time.monotonic() < deadline:
            try:
                conn = await socketiwa.create_tcp("127.0.0.1", tcp_port)
                break
            except socketiwa.ConnectError:
                await asyncio.sleep(0.1)
        news = asyncio.get_running_loop().create_future()
        conn.on("news", lambda payload, ack: news.done() or news.set_result(payload))
        results["ack"] = await conn.emit_with_ack("hello", {"name": "CPython"}, timeout=10)
        results["news"] = await asyncio.wait_for(news, 10)
        await conn.close()
    asyncio.run(tcp())


def main():
    from iwa.runner import start_iwa_runner
    say("starting headless Chromium and installing the socketiwa IWA")
    runner = start_iwa_runner()
    say(f"IWA {runner.origin} ready (Chromium launch {runner.timings['launch_s']:.1f}s, "
        f"installed {runner.timings['install_s']:.1f}s, Pyodide+socketiwa ready {runner.timings['ready_s']:.1f}s)")
    udp_port, tcp_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    results = {}
    peer = threading.Thread(target=cpython_peer, args=(udp_port, tcp_port, results), daemon=True)
    peer.start()
    say(f"running the demo's Python in the page (UDP {udp_port}, TCP {tcp_port}); CPython peer started")
    code = f"UDP_PORT = {udp_port}\nTCP_PORT = {tcp_port}\n" + (ROOT / "iwa-shell/demo/demo_app.py").read_text()
    ok = True
    try:
        runner.set_script_timeout(60)
        runner.run_async(code)
    except Exception as e:
        ok = False
        say(f"the page's Python failed: {e}")
    peer.join(30)
    log = runner.run_js("return document.getElementById('log').textContent")
    shot = runner.cdp.send("Page.captureScreenshot", {"format": "png"}, session=runner.session)
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build/demo.png").write_bytes(base64.b64decode(shot["data"]))
    runner.quit()
    print("\n----- the IWA page's log -----")
    print(log.rstrip())
    print("----- the CPython peer saw -----")
    for key in ("udp", "ack", "news"):
        print(f"{key:>5}: {results.get(key)!r}")
    ok = ok and results.get("udp", b"").startswith(b"IWA says") and results.get("ack", {}).get("welcome") == "CPython"
    say(("demo OK" if ok else "demo FAILED") + " (screenshot: build/demo.png)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
