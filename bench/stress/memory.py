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
        # The soak sets this: a full garbage collection of the page (DevTools' "collect garbage")
        # before a sample at most every gc_every s, so the JS heap is what is live, not what a
        # lazy collector has not reclaimed yet; samples taken right after one say "after_gc".
        self.gc_every: float | None = None
        self._last_gc = 0.0

    def _app_renderer(self) -> int | None:
        info = self.runner.cdp.send("SystemInfo.getProcessInfo")["processInfo"]
        renderers = [p for p in info if p["type"] == "renderer"]
        return max(renderers, key=lambda p: p["cpuTime"])["id"] if renderers else None

    def __call__(self) -> dict:
        after_gc = False
        if self.gc_every is not None and time.monotonic() - self._last_gc >= self.gc_every:
            self.runner.cdp.send("HeapProfiler.collectGarbage", session=self.runner.session, timeout=30)
            self._last_gc = time.monotonic()
            after_gc = True
        pids = process_tree(self.browser_pid)
        total = sum(pss_bytes(p) or 0 for p in pids)
        renderer = pss_bytes(self.renderer_pid) if self.renderer_pid else None
        metrics = {m["name"]: m["value"] for m in self.runner.cdp.send(
            "Performance.getMetrics", session=self.runner.session, timeout=10)["metrics"]}
        wasm = self.runner.cdp.evaluate(
            self.runner.session, "socketiwaShell.pyodide ? socketiwaShell.pyodide._module.HEAP8.length : 0", 10)
        out = {"chromium_pss_mb": round(total / MB, 2), "processes": len(pids),
               "renderer_pss_mb": round(renderer / MB, 2) if renderer else None,
               "js_heap_mb": round(metrics.get("JSHeapUsedSize", 0) / MB, 2),
               "wasm_mb": round((wasm or 0) / MB, 2)}
        if after_gc:
            out["after_gc"] = True
        return out


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


# ---------------------------------------------------------------- the soak's verdict
SOAK_MEASURES = {"cpython": ("rss_mb",),
                 "iwa": ("renderer_pss_mb", "chromium_pss_mb", "wasm_mb", "js_heap_mb"),
                 "iwa-js": ("renderer_pss_mb", "chromium_pss_mb", "js_heap_mb")}
# Growth limit of the fitted slope. At the soak's 1,000 round trips/s, 1 MB/min is 17 bytes per
# round trip: anything a per-packet leak keeps is bigger (a Python int is 28 bytes, a bytes
# object 33 plus its data, a JS object 16 or more plus a 64-byte datagram buffer), while the
# endpoint's own bookkeeping is bounded (cases.SeqWindow, RttHist) and adds nothing per packet.
GROWTH_LIMIT_MB_PER_MIN = 1.0
FIT_FROM = 0.25          # the fit leaves out the first quarter (start-up: imports, JIT, buffers)
WINDOWS = 30             # the soak is cut into this many windows; one value each goes into the fit
SHORT_SOAK_S = 120       # under this, the verdict is marked indicative (the machinery works)
VERDICT_RULE = (f"least-squares slope of the memory over the last {1 - FIT_FROM:.0%} of the soak, "
                f"one point per 1/{WINDOWS} of it (the median; the JS heap: the minimum, its "
                f"floor, of the samples taken right after the forced garbage collections); no "
                f"growth = under {GROWTH_LIMIT_MB_PER_MIN:g} MB/min for every measure")


def slope_per_min(points: list) -> float:
    """Least-squares slope of (t in s, MB) points, in MB per minute."""
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 60 * sum((t - mt) * (v - mv) for t, v in points) / var if var else 0.0


def soak_verdict(samples: list, runtime: str, rate: float | None = None) -> dict:
    """Whether memory grew through a soak, from its samples (Sampler's: ``t`` and MB values):
    per measure, first and last sample, the fitted slope over the last 3/4 (MB/min, and bytes
    per round trip at ``rate``), the windows' values fitted; and one verdict for the runtime."""
    good = [s for s in samples if "error" not in s]
    duration = good[-1]["t"] if good else 0.0
    out: dict = {"rule": VERDICT_RULE, "limit_mb_per_min": GROWTH_LIMIT_MB_PER_MIN,
                 "seconds": duration, "samples": len(good),
                 "indicative_only": duration < SHORT_SOAK_S, "measures": {}}
    width = duration / WINDOWS if duration else 0.0
    grew, measured = [], []
    forced_gc = any(s.get("after_gc") for s in good)
    out["forced_gc"] = forced_gc
    for key in SOAK_MEASURES.get(runtime, ()):
        pts = [(s["t"], s[key]) for s in good if s.get(key) is not None]
        if key == "js_heap_mb" and forced_gc:      # the live heap: samples right after a collection
            pts = [(s["t"], s[key]) for s in good if s.get(key) is not None and s.get("after_gc")]
        if len(pts) < (4 if key == "js_heap_mb" and forced_gc else 2 * WINDOWS // 3) or not width:
            out["measures"][key] = {"error": f"{len(pts)} samples: too few for a fit"}
            continue
        pick = min if key == "js_heap_mb" else (lambda vs: sorted(vs)[len(vs) // 2])
        windows = []
        for w in range(WINDOWS):
            lo, hi = w * width, (w + 1) * width
            vals = [v for t, v in pts if lo <= t < hi or (w == WINDOWS - 1 and t == hi)]
            if vals and lo >= FIT_FROM * duration - 1e-9:
                windows.append((round((lo + hi) / 2, 2), pick(vals)))
        if len(windows) < 3:
            out["measures"][key] = {"error": f"{len(windows)} windows with samples: too few"}
            continue
        slope = slope_per_min(windows)
        m = {"first": pts[0][1], "last": pts[-1][1], "fit_first": windows[0][1],
             "fit_last": windows[-1][1], "slope_mb_per_min": round(slope, 3),
             "grows": slope > GROWTH_LIMIT_MB_PER_MIN, "windows": windows}
        if rate:
            m["bytes_per_round_trip"] = round(slope * MB / 60 / rate, 1)
        out["measures"][key] = m
        measured.append(key)
        if m["grows"]:
            grew.append(key)
    if not measured:
        out["verdict"] = "no data"
    else:
        out["verdict"] = "growth" if grew else "no growth"
    out["grew"] = grew
    return out


def verdict_line(runtime: str, verdict: dict | None, summary: dict | None = None) -> str:
    """One line of text: the runtime's verdict and each measure's first/last value and slope."""
    if not verdict:
        return f"  {runtime:8} soak: no verdict (failed: {(summary or {}).get('error', '?')})"
    parts = []
    for key, m in verdict["measures"].items():
        if "error" in m:
            parts.append(f"{key[:-3]} {m['error']}")
        else:
            parts.append(f"{key[:-3]} {m['first']:.1f} -> {m['last']:.1f} MB, "
                         f"{m['slope_mb_per_min']:+.2f} MB/min")
    note = " (short soak: indicative only)" if verdict.get("indicative_only") else ""
    head = f"  {runtime:8} soak {verdict['seconds']:.0f} s: {verdict['verdict'].upper()}{note}"
    if summary and "sent" in summary:
        head += f" [sent {summary['sent']:,}, lost {summary.get('lost', 0):,}, late {summary.get('late', 0):,}]"
    return head + ": " + "; ".join(parts)
