"""Memory sampled while a profile runs: the CPython endpoint's RSS, Chromium's processes (PSS from
/proc, which counts shared pages once) and, inside the IWA page, the JS heap (CDP
Performance.getMetrics) and Pyodide's WebAssembly memory."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

MB = 1 << 20


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def pss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def process_tree(root: int) -> list[int]:
    """root and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


class Sampler:
    """Samples every ``interval`` s in a thread until stopped; ``samples`` is a list of dicts with
    ``t`` (s since start) and values in MB."""

    def __init__(self, probe, interval: float = 0.25):
        self.probe, self.interval = probe, interval
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while True:
            try:
                sample = self.probe()
            except Exception as exc:   # a probe that fails once must not end the run
                sample = {"error": repr(exc)}
            sample["t"] = round(time.monotonic() - t0, 3)
            self.samples.append(sample)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def cpython_probe(pid: int):
    def probe() -> dict:
        rss = rss_bytes(pid)
        return {"rss_mb": round(rss / MB, 2) if rss else None}
    return probe


class ChromiumProbe:
    """Chromium's memory: every process's PSS summed, the app's renderer alone, and from the page
    the JS heap and Pyodide's wasm memory. The app's renderer is the one that spent the most CPU
    (it runs Pyodide); CDP's SystemInfo.getProcessInfo names the renderers."""

    def __init__(self, runner):
        self.runner = runner
        self.browser_pid = runner.cdp.proc.pid
        runner.cdp.send("Performance.enable", session=runner.session)
        self.renderer_pid = self._app_renderer()

    def _app_renderer(self) -> int | None:
        info = self.runner.cdp.send("SystemInfo.getProcessInfo")["processInfo"]
        renderers = [p for p in info if p["type"] == "renderer"]
        return max(renderers, key=lambda p: p["cpuTime"])["id"] if renderers else None

    def __call__(self) -> dict:
        pids = process_tree(self.browser_pid)
        total = sum(pss_bytes(p) or 0 for p in pids)
        renderer = pss_bytes(self.renderer_pid) if self.renderer_pid else None
        metrics = {m["name"]: m["value"] for m in self.runner.cdp.send(
            "Performance.getMetrics", session=self.runner.session, timeout=10)["metrics"]}
        wasm = self.runner.cdp.evaluate(
            self.runner.session, "socketiwaShell.pyodide ? socketiwaShell.pyodide._module.HEAP8.length : 0", 10)
        return {"chromium_pss_mb": round(total / MB, 2), "processes": len(pids),
                "renderer_pss_mb": round(renderer / MB, 2) if renderer else None,
                "js_heap_mb": round(metrics.get("JSHeapUsedSize", 0) / MB, 2),
                "wasm_mb": round((wasm or 0) / MB, 2)}


def measure_ua_memory(runner, timeout: float = 60) -> dict | None:
    """performance.measureUserAgentSpecificMemory(): the page's own account (JS heap, DOM,
    shared); it waits for a garbage collection, about 17 s here, so it is taken once per run."""
    try:
        return runner.cdp.evaluate(
            runner.session, "performance.measureUserAgentSpecificMemory().then(r => "
            "({bytes: r.bytes, breakdown: r.breakdown.map(b => ({bytes: b.bytes, types: b.types}))}))",
            timeout)
    except Exception as exc:   # not available in every context: say so in the report
        return {"error": repr(exc)}
