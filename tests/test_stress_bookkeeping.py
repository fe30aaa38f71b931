"""The stress profiles' own bookkeeping (bench/stress/): the bounded sequence window and round-trip
histogram of cases.py and cases.mjs agree with a plain set and a sorted list and with each other,
stay bounded however many packets pass, and the soak's growth verdict (memory.soak_verdict) tells
a flat series from a growing one. No network: CPython, and Node for cases.mjs.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRESS = ROOT / "bench" / "stress"
sys.path.insert(0, str(STRESS))
import memory  # noqa: E402
import stats  # noqa: E402


@pytest.fixture(scope="module")
def cases() -> dict:
    ns = {"__name__": "stress_cases"}
    exec((STRESS / "cases.py").read_text(), ns)
    return ns


def reference(seqs: list, sent: int, window: int) -> dict:
    """What a SeqWindow of ``window`` numbers must report, from a plain set: per arrival new (1),
    duplicate (0) or stale (-1: below the window that slides with the highest number seen), the
    unique count and the first 20 runs of numbers below ``sent`` never seen."""
    seen: set = set()
    verdicts, stale, top = [], 0, -1
    for seq in seqs:
        # the window's lowest number once it has grown to ``window`` bits and started sliding
        low = max(0, top - window + 1) if top >= window else 0
        if seq < low:
            verdicts.append(-1)
            stale += 1
            continue
        verdicts.append(0 if seq in seen else 1)
        seen.add(seq)
        top = max(top, seq)
    runs: list = []
    for seq in range(sent):
        if seq not in seen:
            if runs and runs[-1][1] == seq - 1:
                runs[-1][1] = seq
            elif len(runs) < 20:
                runs.append([seq, seq])
            else:
                break
    return {"verdicts": verdicts, "count": len(seen), "stale": stale, "missing": runs}


def workloads(seed: int = 7) -> list:
    """Sequences with loss, local reordering, duplicates, jumps past the window and very late
    arrivals, each with its window size and sent count."""
    rng = random.Random(seed)
    out = []
    for _ in range(60):
        window = rng.choice([64, 128, 1024])
        n = rng.randrange(1, 6000)
        seqs = [s for s in range(n) if rng.random() > rng.choice([0.0, 0.01, 0.3])]
        for _ in range(len(seqs) // 10):               # swaps: out of order
            if len(seqs) > 1:
                j = rng.randrange(len(seqs) - 1)
                seqs[j], seqs[j + 1] = seqs[j + 1], seqs[j]
        for _ in range(rng.randrange(0, 20)):         # duplicates and very late ones
            if seqs:
                seqs.insert(rng.randrange(len(seqs) + 1), rng.choice(seqs))
        if rng.random() < 0.3:                         # a jump far past the window
            seqs.append(n + 5 * window)
            n += 5 * window + 1
        out.append({"window": window, "seqs": seqs, "sent": n + rng.randrange(0, 5)})
    return out


def test_seq_window_matches_a_set(cases):
    for w in workloads():
        win = cases["SeqWindow"](w["window"])
        got = [win.add(s) for s in w["seqs"]]
        want = reference(w["seqs"], w["sent"], w["window"])
        assert got == want["verdicts"]
        assert (len(win), win.stale, win.missing(w["sent"])) == (want["count"], want["stale"], want["missing"])
    # a workload that slides and has stale arrivals: the cases above must have covered both
    assert any(reference(w["seqs"], w["sent"], w["window"])["stale"] for w in workloads())


def test_seq_window_is_bounded(cases):
    """A million numbers through a window of 4,096: the bitmap stays at 512 bytes and the record
    of missing runs at 20, while the counts stay exact."""
    win = cases["SeqWindow"](1 << 12)
    n = 1_000_000
    for seq in range(n):
        if seq % 1000:                 # every 1000th never arrives
            win.add(seq)
    assert len(win.bits) == (1 << 12) // 8 and win.cap == 1 << 12
    assert len(win) == n - n // 1000 and win.stale == 0
    assert win.slid_missing == sum(1 for m in range(0, n, 1000) if m < win.base) > 900
    assert len(win.runs) == 20
    assert win.missing(n) == [[m, m] for m in range(0, 20_000, 1000)]


def run_js(script: str, data) -> object:
    """Evaluate ``script`` under Node with cases.mjs loaded (globalThis.__stress) and ``data``
    (sent on stdin) as ``input``; returns what it prints (JSON)."""
    code = (f"await import({json.dumps((STRESS / 'cases.mjs').as_uri())});\n"
            "const input = JSON.parse((await import('node:fs')).readFileSync(0, 'utf8'));\n"
            f"const S = globalThis.__stress;\n{script}")
    out = subprocess.run(["node", "--input-type=module", "-e", code], input=json.dumps(data),
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def test_seq_window_js_matches_python(cases):
    loads = workloads(seed=11)
    js = run_js("""
        console.log(JSON.stringify(input.map((w) => {
          const win = new S.SeqWindow(w.window);
          const verdicts = w.seqs.map((s) => win.add(s));
          return { verdicts, count: win.count, stale: win.stale, missing: win.missing(w.sent) };
        })));""", loads)
    for w, got in zip(loads, js, strict=True):
        win = cases["SeqWindow"](w["window"])
        verdicts = [win.add(s) for s in w["seqs"]]
        assert got == {"verdicts": verdicts, "count": len(win), "stale": win.stale,
                       "missing": win.missing(w["sent"])}


def test_histogram_buckets_and_percentiles(cases):
    rng = random.Random(3)
    values = list(range(300)) + [rng.randrange(0, 1 << 31) for _ in range(3000)] + \
        [int(rng.lognormvariate(8, 2)) for _ in range(3000)]
    bucket, lower = cases["hist_bucket"], cases["hist_lower"]
    for v in values:
        b = bucket(v)
        assert lower(b) <= v < lower(b + 1)                     # the bucket holds the value
        one = cases["RttHist"]()
        one.add(v)                                              # its own (inlined) bucketing
        assert one.as_dict()["rtt_hist"] == [[lower(b), 1]]
        assert v < 128 and lower(b) == v or (v - lower(b)) / v < 1 / 64
    js = run_js("console.log(JSON.stringify(input.map((v) => [S.histBucket(v), S.histLower(S.histBucket(v))])));",
                values)
    assert js == [[bucket(v), lower(bucket(v))] for v in values]
    # Percentiles from the histogram are within 1/64 of the exact ones (nearest rank).
    hist = cases["RttHist"]()
    sample = [int(rng.lognormvariate(7, 1.5)) for _ in range(20000)]
    for v in sample:
        hist.add(v)
    out = hist.as_dict()
    exact = stats.latency(sample)
    approx = stats.hist_latency(out)
    assert approx["samples"] == len(sample) and approx["max_us"] == max(sample)
    for key in ("p50_us", "p90_us", "p99_us", "p999_us"):
        assert approx[key] <= exact[key] and (exact[key] - approx[key]) <= exact[key] / 64, key
    # merging two histograms is the histogram of both samples
    a, b = cases["RttHist"](), cases["RttHist"]()
    for i, v in enumerate(sample):
        (a if i % 3 else b).add(v)
    a.merge(b)
    assert a.as_dict() == out


def test_tally_counts_late_dup_and_segments(cases):
    """Tally (cases.py) over real packets: duplicates, out of order, corrupt, late after
    late_after, and per-segment counts (the ramp's steps)."""
    perf = cases["perf"]
    tally = cases["Tally"](7, perf())
    tally.add_segment(0)
    tally.add_segment(5)
    packet = cases["packet"]
    for seq in (0, 1, 3, 2, 2, 6):
        tally.add(packet(7, seq, 64))
    tally.add(packet(8, 4, 64))              # another flow: corrupt
    tally.late_after = perf() - 1             # from now on, arrivals are late
    tally.add(packet(7, 5, 64))
    tally.add(packet(7, 5, 64))               # a late duplicate is not late twice
    r = tally.result(8, [], perf())
    # out of order: 2 after 3, and 5 after 6
    assert (r["received"], r["duplicated"], r["out_of_order"], r["corrupt"], r["late"]) == (6, 2, 2, 1, 1)
    assert tally.segment_counts == [4, 2]
    assert r["missing"] == [[4, 4], [7, 7]]
    assert sum(c for _, c in r["rtt_hist"]) == 6


def synthetic(duration: float, fn, interval: float = 1.0) -> list:
    return [{"t": t * interval, **fn(t * interval)} for t in range(int(duration / interval) + 1)]


def test_soak_verdict():
    rng = random.Random(5)
    rate = 1000
    # flat with noise: no growth
    flat = synthetic(300, lambda t: {"rss_mb": 25 + rng.uniform(-0.3, 0.3)})
    v = memory.soak_verdict(flat, "cpython", rate)
    assert v["verdict"] == "no growth" and not v["indicative_only"], v["measures"]
    # 2 MB/min: growth, and the slope is measured
    rising = synthetic(300, lambda t: {"rss_mb": 25 + 2 * t / 60 + rng.uniform(-0.3, 0.3)})
    v = memory.soak_verdict(rising, "cpython", rate)
    assert v["verdict"] == "growth" and v["grew"] == ["rss_mb"]
    assert abs(v["measures"]["rss_mb"]["slope_mb_per_min"] - 2) < 0.2
    # a rise in the first quarter only (start-up), then flat: no growth
    startup = synthetic(300, lambda t: {"rss_mb": 5 + min(t, 60) / 3})
    assert memory.soak_verdict(startup, "cpython", rate)["verdict"] == "no growth"
    # the JS heap: a garbage-collection sawtooth with a flat floor is no growth; a rising floor is
    saw = synthetic(300, lambda t: {"renderer_pss_mb": 200.0, "chromium_pss_mb": 400.0,
                                    "js_heap_mb": 15 + (t % 7) * 2})
    assert memory.soak_verdict(saw, "iwa-js", rate)["verdict"] == "no growth"
    saw_up = synthetic(300, lambda t: {"renderer_pss_mb": 200.0, "chromium_pss_mb": 400.0,
                                       "js_heap_mb": 15 + (t % 7) * 2 + 3 * t / 60})
    v = memory.soak_verdict(saw_up, "iwa-js", rate)
    assert v["verdict"] == "growth" and v["grew"] == ["js_heap_mb"]
    # a short soak is marked indicative; no samples give no verdict
    assert memory.soak_verdict(synthetic(30, lambda t: {"rss_mb": 25.0}, 0.25), "cpython")["indicative_only"]
    assert memory.soak_verdict([], "cpython")["verdict"] == "no data"
