#!/usr/bin/env python3
"""The stress report in one command: run every profile on every runtime (run.py), then write
results/stress/report.md (tables, with machine and date), PNG plots (rate over time, latency CDF,
memory over time, ratio bars) and readme-performance.md (the README's performance section).

    scripts/netns.sh .venv/bin/python bench/stress/report.py            # full run (~12 min; --soak: +17 min)
    scripts/netns.sh .venv/bin/python bench/stress/report.py --quick    # a tenth of everything
    .venv/bin/python bench/stress/report.py --from results/stress/latest.json   # re-render only
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402

OUT = run.OUT
PY = "iwa"          # Python in the IWA: the runtime the ratios are about
COLORS = {"cpython": "#3572A5", "iwa": "#d62728", "iwa-js": "#e6a700", "node": "#2ca02c"}
LABELS = {"cpython": "CPython", "iwa": "Python in the IWA", "iwa-js": "plain JS in the IWA",
          "node": "Pyodide in Node"}


def fmt(v, digits=0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and digits:
        return f"{v:,.{digits}f}"
    return f"{round(v):,}"


def ms(us) -> str:
    return "-" if us is None else f"{us / 1000:,.1f}"


def memory_peak(summary: dict) -> str:
    samples = [s for s in summary.get("memory", []) if "error" not in s]
    if not samples:
        return "-"
    if "rss_mb" in samples[0]:
        vals = [s["rss_mb"] for s in samples if s.get("rss_mb")]
        return f"RSS {max(vals):.0f}" if vals else "-"
    vals = [s["renderer_pss_mb"] for s in samples if s.get("renderer_pss_mb")]
    return f"renderer {max(vals):.0f}" if vals else "-"


def sides(summary: dict) -> dict:
    """Both sides' counts summed over the profile's transports (chaos has UDP and TCP):
    at_peer, echoed, back, lost_out, lost_back; empty for a record without the peer's view."""
    d = summary.get("directions") or {}
    if not d:
        return {}
    return {"at_peer": sum(x["out"]["at_peer"] for x in d.values()),
            "echoed": sum(x["back"]["echoed"] for x in d.values()),
            "back": sum(x["back"]["received"] for x in d.values()),
            "lost_out": sum(x["out"]["lost"] for x in d.values()),
            "lost_back": sum(x["back"]["lost"] for x in d.values())}


def lost_cell(summary: dict) -> str:
    """Lost (never arrived), split out / back from both sides' counts, and what was unresolved."""
    cell = fmt(summary["lost"])
    sd = sides(summary)
    if sd:
        cell += f" ({fmt(sd['lost_out'])} / {fmt(sd['lost_back'])})"
    if summary.get("unresolved"):
        cell += f", {fmt(summary['unresolved'])} unresolved"
    return cell


def ratio(a, b) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def headline(summary: dict):
    return None if "error" in summary else summary.get("rate")


def tables(res: dict) -> str:
    rts = list(res["runs"])
    m = res["machine"]
    lines = [
        "# socketiwa stress report", "",
        f"Run {res['time']} on {m['cpu']} ({m['cpus']} CPUs), Linux {m['kernel']}, CPython "
        f"{m['python']}, {m['chromium']}; load average {m['loadavg_at_start'][0]:.1f} at start, "
        f"{m.get('loadavg_at_end', [0])[0]:.1f} at the end (the machine is shared: compare within "
        f"one run). Scale {res['scale']} (1 = the full profiles), Pyodide WebLoop mode "
        f"`{res['webloop']}`. Produced by `bench/stress/report.py`; raw numbers in `latest.json`.", "",
        "Runtimes: **CPython** (socketiwa's native backend, its own process), **Python in the IWA** "
        "(the same `cases.py` in Pyodide inside Chromium's Isolated Web App), **plain JS in the "
        "IWA** (`cases.mjs`, the lean Direct Sockets loop a JS developer would write, same page). "
        "The far end is `peer.py` (plain sockets, its own process): it counts what arrives and "
        "echoes it.", "",
        "## Profiles", "",
        "| profile | runtime | sent | at peer | peer echoed | back | late | lost (out / back) | "
        "loss % | dup | out of order | rate /s | send rate /s | p50 ms | p99 ms | p99.9 ms | "
        "memory peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for profile in res["profiles"]:
        for rt in rts:
            s = res["runs"][rt].get(profile)
            if s is None or profile == "quic":
                continue
            if "error" in s:
                lines.append(f"| {profile} | {rt} | failed: {s['error'][:80]} ||||||||||||||||")
                continue
            lat = s["latency"]
            sd = sides(s)
            lines.append(
                f"| {profile} | {rt} | {fmt(s['sent'])} | {fmt(sd.get('at_peer'))} | "
                f"{fmt(sd.get('echoed'))} | {fmt(sd.get('back'))} | {fmt(s.get('late'))} | "
                f"{lost_cell(s)} | {s['loss_pct']:.2f} | {s['duplicated']} | {s['out_of_order']} | "
                f"{fmt(s['rate'])} | {fmt(s.get('send_rate'))} | {ms(lat['p50_us'])} | "
                f"{ms(lat['p99_us'])} | {ms(lat['p999_us'])} | {memory_peak(s)} |")
    lines += ["", "What the columns mean: *sent* and *back* are the endpoint's counts, *at peer* "
              "and *peer echoed* the peer's own (`peer.py`, asked for the profile's flows after "
              "it ended). *late*: came back more than 0.3 s after the last send (counted in "
              "*back*). *lost*: never arrived; after the last send the endpoint waits until no "
              "echo came for 1 s (5 s for TCP), so late echoes are not counted lost; split into "
              "the way out (sent - at peer) and the way back (peer echoed - back). *unresolved*: "
              "still missing when the wait hit its limit with echoes still arriving. "
              "*burst_udp* counts one way (lost and rate from the peer's count: arrivals per "
              "second at the peer; the peer echoes every 16th datagram, the latency sample). "
              "All other profiles count round trips (endpoint -> peer -> endpoint); rate = "
              "unique echoes per second from the first send to the last echo. *chaos* sums UDP "
              "and TCP; its TCP includes aborted connections, whose in-flight messages the peer "
              "may have received and echoed after the endpoint stopped reading (not counted "
              "in *lost*). *ramp_udp* rate = the highest achieved rate of a step that lost under "
              "1%. Latency percentiles come from a histogram with 64 buckets per octave (within "
              "1.6%). TCP profiles must lose nothing.", "",
              "## Ratios (rate)", "",
              "| profile | CPython | Python in the IWA | plain JS in the IWA | IWA Python / CPython | "
              "IWA Python / JS |", "|---|---|---|---|---|---|"]
    for profile in res["profiles"]:
        vals = {rt: headline(res["runs"][rt].get(profile, {"error": 1})) for rt in rts}
        lines.append(f"| {profile} | {fmt(vals.get('cpython'))} | {fmt(vals.get(PY))} | "
                     f"{fmt(vals.get('iwa-js'))} | {ratio(vals.get(PY), vals.get('cpython'))} | "
                     f"{ratio(vals.get(PY), vals.get('iwa-js'))} |")
    quic_rows = []
    for rt in rts:
        s = res["runs"][rt].get("quic")
        if s and "error" not in s:
            quic_rows.append(
                f"| {rt} | {s['handshakes_per_s']:.1f} | {ms(s['latency']['p50_us'])} | "
                f"{s['bulk']['mb_per_s']:.2f} ({s['bulk']['bytes'] / 2**20:.0f} MiB) | "
                f"{s['lossy1']['mb_per_s']:.2f} | {s['lossy5']['mb_per_s']:.2f} | "
                f"{'yes' if s['sha256_ok'] else 'NO'} |")
        elif s:
            quic_rows.append(f"| {rt} | failed: {s['error'][:100]} ||||||")
    if quic_rows:
        q = {rt: res["runs"][rt].get("quic", {}) for rt in rts}
        py, cp = q.get(PY, {}), q.get("cpython", {})
        ratios = ""
        if "bulk" in py and "bulk" in cp:
            ratios = (f"| IWA Python / CPython | {ratio(py['handshakes_per_s'], cp['handshakes_per_s'])} | | "
                      f"{ratio(py['bulk']['mb_per_s'], cp['bulk']['mb_per_s'])} | "
                      f"{ratio(py['lossy1']['mb_per_s'], cp['lossy1']['mb_per_s'])} | "
                      f"{ratio(py['lossy5']['mb_per_s'], cp['lossy5']['mb_per_s'])} | |")
        lines += ["", "## QUIC (socketiwa.quic client -> aioquic echo server on CPython)", "",
                  "Handshakes one after another (closing not counted); one stream echoing the bulk "
                  "size; the same with a quarter of it through a relay that drops and reorders 1% "
                  "and 5% of datagrams each way (`quic_peer.py`). Every echo is checked by SHA-256. "
                  "Plain JS has no QUIC over Direct Sockets to compare with.", "",
                  "| runtime | handshakes/s | handshake p50 ms | bulk MB/s | 1% loss MB/s | 5% loss MB/s "
                  "| SHA-256 ok |", "|---|---|---|---|---|---|---|", *quic_rows]
        if ratios:
            lines.append(ratios)
    ramp_rows = []
    for rt in rts:
        s = res["runs"][rt].get("ramp_udp")
        if s and "steps" in s:
            steps = ", ".join(f"{st['rate']:,}: sent {st['achieved_rate']:,}/s, "
                              f"{100 * (1 - st['received'] / max(1, st['sent'])):.1f}% lost"
                              + (f" ({100 * (1 - st['on_time'] / max(1, st['sent'])):.1f}% not back "
                                 "within 0.3 s)" if "on_time" in st else "")
                              for st in s["steps"])
            ramp_rows.append(f"| {rt} | {steps} |")
    if ramp_rows:
        lines += ["", "## Ramp steps (target rate: achieved send rate, loss)", "", "| runtime | steps |",
                  "|---|---|", *ramp_rows]
    chaos_rows = []
    for rt in rts:
        s = res["runs"][rt].get("chaos")
        if s and "error" not in s:
            chaos_rows.append(
                f"| {rt} | {s['actions']} | {s['udp_sent']:,} / {s['udp_delivered']:,} / {s['udp_received']:,} | "
                f"{s['tcp_connections']} ({s['tcp_aborted']} aborted) | {s['tcp_messages']:,} / {s['tcp_lost']} | "
                f"{s['vanish_ended']} of {s['vanished']} | {s['refused_typed']} of {s['refused']} | "
                f"{s['blackhole_received']} | {len(s['unexpected'])} |")
    if chaos_rows:
        lines += ["", "## Chaos (seeded: the same schedule on every runtime)", "",
                  "| runtime | actions | UDP sent / at peer / back | TCP connections | TCP messages / lost "
                  "| vanished peers seen ending | refused connects with a typed error | "
                  "datagrams from the silent peer | unexpected |", "|---|---|---|---|---|---|---|---|---|",
                  *chaos_rows]
        for rt in rts:
            s = res["runs"][rt].get("chaos")
            if s and s.get("unexpected"):
                lines.append(f"\n{rt} unexpected: " + "; ".join(s["unexpected"][:10]))
    lines += ["", "## Memory (MB: first sample / peak / last sample of each profile)", "",
              "| profile | runtime | measure | first | peak | last |", "|---|---|---|---|---|---|"]
    for profile in res["profiles"]:
        for rt in rts:
            s = res["runs"][rt].get(profile) or {}
            samples = [x for x in s.get("memory", []) if "error" not in x]
            keys = ("rss_mb",) if rt == "cpython" else ("chromium_pss_mb", "renderer_pss_mb", "js_heap_mb", "wasm_mb")
            for k in keys:
                vals = [x[k] for x in samples if x.get(k) is not None]
                if vals:
                    lines.append(f"| {profile} | {rt} | {k[:-3]} | {vals[0]:.1f} | {max(vals):.1f} | {vals[-1]:.1f} |")
    ua = res.get("ua_memory")
    if ua:
        lines += ["", "`performance.measureUserAgentSpecificMemory()` in the IWA page at the end: " +
                  (f"{ua['bytes'] / 2**20:.1f} MB (" + ", ".join(
                      f"{'/'.join(b['types']) or 'other'} {b['bytes'] / 2**20:.1f}" for b in ua["breakdown"])
                   + "). It covers the JS heap and DOM, not Pyodide's WebAssembly memory (shown "
                   "above as wasm)." if "bytes" in ua else f"not available ({ua.get('error')})")]
    problems = []
    for rt in rts:
        for profile, s in res["runs"][rt].items():
            if "error" in s:
                problems.append(f"- {rt} {profile}: failed ({s['error'][:200]})")
            elif s.get("transport") == "tcp" and s.get("lost"):
                problems.append(f"- {rt} {profile}: **TCP lost {s['lost']:,} of {s['sent']:,} messages** "
                                f"(never back: {s.get('missing')}; the peer received "
                                f"{s.get('peer_tcp_bytes', 0):,} bytes)")
            elif profile == "chaos" and s.get("tcp_lost"):
                problems.append(f"- {rt} chaos: **TCP lost {s['tcp_lost']} messages** on connections "
                                "closed normally (aborted ones are not counted); connections whose "
                                f"echoes stopped for 5 s: {s.get('tcp_unfinished_idle', '?')}, still "
                                f"coming at the 20 s limit: {s.get('tcp_unfinished_limit', '?')}")
            elif profile == "quic" and not s.get("sha256_ok"):
                problems.append(f"- {rt} quic: SHA-256 mismatch")
            if s.get("unresolved"):
                problems.append(f"- {rt} {profile}: {s['unresolved']:,} echoes still missing when the "
                                "wait hit its limit (echoes were still arriving: neither back nor lost)")
            if s.get("stale"):
                problems.append(f"- {rt} {profile}: {s['stale']:,} echoes arrived too far behind to be "
                                "told from duplicates (stale)")
            if s.get("unexpected"):
                problems.append(f"- {rt} {profile}: {len(s['unexpected'])} unexpected outcomes")
    lines += soak_lines(res)
    lines += per_packet_lines()
    lines += ["", "## Checks", "", "Every TCP message back intact, every QUIC transfer matching its "
              "SHA-256, every chaos action ending in a counted outcome:", "",
              *(problems or ["- all held"])]
    lines += ["", "## Plots", "", "![rate over time](rate_over_time.png)", "",
              "![latency CDF](latency_cdf.png)", "", "![memory over time](memory.png)", "",
              "![ratios](ratios.png)", ""]
    return "\n".join(lines)


SOAK_KEYS = {"cpython": ("rss_mb",), "iwa": ("renderer_pss_mb", "chromium_pss_mb", "wasm_mb", "js_heap_mb"),
             "iwa-js": ("renderer_pss_mb", "chromium_pss_mb", "js_heap_mb")}


def soak_minutes(summary: dict, key: str) -> list:
    """Median of ``key`` in each whole minute of the soak's samples."""
    samples = [x for x in summary.get("memory", []) if "error" not in x and x.get(key) is not None]
    out = []
    for minute in range(int(samples[-1]["t"] // 60) if samples else 0):
        vals = sorted(x[key] for x in samples if minute * 60 <= x["t"] < (minute + 1) * 60)
        out.append(vals[len(vals) // 2] if vals else None)
    return out


def soak_runs(res: dict) -> list[tuple[str, dict]]:
    """(label, soak summary): this run's soaks, then side runs added with --add-soak."""
    out = []
    for rt, runs in res["runs"].items():
        if runs.get("soak_udp"):
            out.append((rt, runs["soak_udp"]))
    for extra in res.get("extra_soaks", []):
        out.append((extra["label"], extra["summary"]))
    return out


def verdict_rows(res: dict) -> list[str]:
    """The soak verdicts (memory.soak_verdict, computed by run.py from the samples)."""
    rows = []
    for label, s in soak_runs(res):
        v = s.get("soak_verdict")
        if not v:
            continue
        head = (f"**{v['verdict']}**" + (" (short soak: indicative only)" if v.get("indicative_only") else ""))
        for key, m in v["measures"].items():
            if "error" in m:
                rows.append(f"| {label} | {head} | {key[:-3]} | {m['error']} ||||||")
                continue
            rows.append(f"| {label} | {head} | {key[:-3]} | {m['first']:.1f} | {m['last']:.1f} | "
                        f"{m['fit_first']:.1f} -> {m['fit_last']:.1f} | {m['slope_mb_per_min']:+.2f} | "
                        f"{fmt(m.get('bytes_per_round_trip'), 1)} | {'yes' if m['grows'] else 'no'} |")
            head = ""
    if not rows:
        return []
    memory = run.memory
    return ["", f"Verdict per runtime: {memory.VERDICT_RULE}. Why {memory.GROWTH_LIMIT_MB_PER_MIN:g} "
            "MB/min: at 1,000 round trips/s it is 17 bytes per round trip, less than anything a "
            "per-packet leak keeps (a Python int is 28 bytes, a JS object 16 or more plus the "
            "datagram), and the profile's own bookkeeping adds nothing per packet.", "",
            "| runtime | verdict | measure | first sample MB | last sample MB | fitted windows MB "
            "| slope MB/min | bytes per round trip | grows |", "|---|---|---|---|---|---|---|---|---|",
            *rows]


def soak_lines(res: dict) -> list[str]:
    rows = []
    for label, s in soak_runs(res):
        rt = label.split()[0]
        if "error" in s:
            rows.append(f"| {label} | failed: {s['error'][:100]} |||||||||")
            continue
        for key in SOAK_KEYS.get(rt, ()):
            mins = soak_minutes(s, key)[:5]
            known = [v for v in mins if v is not None]
            if len(known) >= 2:
                cells = [f"{v:.1f}" if v is not None else "-" for v in mins] + [""] * (5 - len(mins))
                rows.append(f"| {label} | {key[:-3]} | " + " | ".join(cells) +
                            f" | {known[-1] - known[0]:+.1f} | {fmt(s['send_rate'])}/s | "
                            f"{fmt(s['sent'])} / {fmt(s['lost'])} | {ms(s['latency']['p50_us'])} |")
    verdicts = verdict_rows(res)
    if not rows and not verdicts:
        return []
    return ["", "## Soak (constant rate for 5 minutes, memory)", "",
            "UDP round trips at a constant rate for 300 s (`run.py` SOAK_RATE), memory sampled every "
            "second; median per minute. The endpoint's own bookkeeping is bounded (a sliding "
            "bitmap of sequence numbers that stops growing at 128 KiB, a fixed round-trip "
            "histogram), so growth would be socketiwa's, Pyodide's or Chromium's. A soak whose "
            "endpoint falls behind (late or lost > 0, round trips of seconds) also holds a "
            "backlog: compare it with one that keeps up.", "",
            *(["| runtime | measure (MB) | minute 1 | 2 | 3 | 4 | 5 | minute 5 - minute 1 | rate | "
               "sent / lost | p50 round trip ms |", "|---|---|---|---|---|---|---|---|---|---|---|", *rows]
              if rows else []), *verdicts]


def per_packet_lines() -> list[str]:
    """Where a UDP round trip's time goes in the browser: measured in results/push-browser.md
    (udp_profile_backend_*), linked rather than repeated."""
    return ["", "## Where the time goes per packet in the browser", "",
            "Profiled in [`results/push-browser.md`](../push-browser.md#where-the-time-goes-"
            "udp_profile_backend_-iwa-time-inside-the-per-socket-python-function) "
            "(push model, IWA, echo to a CPython peer): Python's part of a round trip is 135 us of "
            "465 us at window 1 (29%) and 57 of 353 us at window 32 (16%); the rest is Chromium's "
            "socket tasks, the JS pump and the JS<->Python crossings. Per datagram: **crossings** "
            "one JS->Python call (the socket's sink; Chromium delivers each datagram in its own "
            "task, so batches form only when Python falls behind) and one Python->JS call "
            "(`sendFrom`); **copies** four (JS into the wasm receive buffer, Python `bytes` out "
            "of it, Python into the wasm send region, JS `slice` out of it for `write()`); "
            "**Python** the header parse, the event dispatch and the user's handler (plus, for "
            "`receive()`, a queue put/get and a task wake); **JS** the pump's `read()` and "
            "Chromium's `writable.write()`, which the plain-JS loop pays too. Why a constant "
            "2k/s echo comes back late in the IWA: [`diag-constant.md`](diag-constant.md)."]


def update_readme(section: str, readme: Path = run.ROOT / "README.md") -> bool:
    """Put ``section`` between the README's stress-report markers (the first time: in place of
    the hand-written "### Stress suite" section). Returns whether README.md changed."""
    begin, end = "<!-- stress-report:begin (generated by bench/stress/report.py) -->", "<!-- stress-report:end -->"
    text = readme.read_text()
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
    else:
        start = text.find("### Stress suite (`bench/stress/report.py`)")
        if start < 0:
            return False
        stop = text.find("\n## ", start)
        head, tail = text[:start], text[stop + 1:] if stop >= 0 else ""
        tail = "\n\n" + tail
    new = f"{head}{begin}\n{section.rstrip()}\n{end}{tail}"
    if new != text:
        readme.write_text(new)
    return new != text


def readme_section(res: dict) -> str:
    rts = list(res["runs"])
    m = res["machine"]
    rows = ["| profile | CPython | Python in the IWA | plain JS in the IWA | IWA Py / CPython | IWA Py / JS "
            "| IWA Python lost |",
            "|---|---|---|---|---|---|---|"]
    for profile in [p for p in res["profiles"] if p != "quic"]:
        vals = {rt: headline(res["runs"][rt].get(profile, {"error": 1})) for rt in rts}
        py = res["runs"].get(PY, {}).get(profile, {})
        lost = f"{py['lost']:,} of {py['sent']:,}" if "lost" in py else "-"
        rows.append(f"| {profile} (/s) | {fmt(vals.get('cpython'))} | {fmt(vals.get(PY))} | "
                    f"{fmt(vals.get('iwa-js'))} | {ratio(vals.get(PY), vals.get('cpython'))} | "
                    f"{ratio(vals.get(PY), vals.get('iwa-js'))} | {lost} |")
    q = {rt: res["runs"][rt].get("quic", {}) for rt in rts}
    cp, py = q.get("cpython", {}), q.get(PY, {})
    if "bulk" in cp and "bulk" in py:
        for label, get in (("QUIC handshakes/s", lambda x: x["handshakes_per_s"]),
                           ("QUIC bulk echo MB/s", lambda x: x["bulk"]["mb_per_s"]),
                           ("QUIC MB/s at 1% loss+reorder", lambda x: x["lossy1"]["mb_per_s"]),
                           ("QUIC MB/s at 5% loss+reorder", lambda x: x["lossy5"]["mb_per_s"])):
            rows.append(f"| {label} | {get(cp):.2f} | {get(py):.2f} | | {ratio(get(py), get(cp))} | | "
                        f"SHA-256 {'ok' if py['sha256_ok'] else 'MISMATCH'} |")
    soak = []
    for label, s in soak_runs(res):
        rt = label.split()[0]
        keys = {"cpython": ("rss_mb",), PY: ("renderer_pss_mb", "js_heap_mb", "wasm_mb"),
                "iwa-js": ("renderer_pss_mb", "js_heap_mb")}.get(rt, ())
        parts = []
        for key in keys if "error" not in s else ():
            mins = [v for v in soak_minutes(s, key)[:5] if v is not None]
            if len(mins) >= 2:
                parts.append(f"{key[:-3].replace('_', ' ')} {mins[0]:.1f} -> {mins[-1]:.1f} MB")
        verdict = (s.get("soak_verdict") or {}).get("verdict")
        if parts:
            soak.append(f"{LABELS.get(rt, rt)} at {fmt(s['send_rate'])}/s ({fmt(s['lost'])} of "
                        f"{fmt(s['sent'])} lost, {fmt(s.get('late'))} late, p50 "
                        f"{ms(s['latency']['p50_us'])} ms): " + ", ".join(parts)
                        + (f" - **{verdict}**" if verdict else ""))
    soak_line = []
    if soak:
        soak_line = ["5-minute soaks, memory as the median of minute 1 -> minute 5: " + "; ".join(soak) + ".", ""]
    return "\n".join([
        "### Stress suite (`bench/stress/report.py`)", "",
        "One command: `scripts/netns.sh .venv/bin/python bench/stress/report.py --soak` (about "
        "30 minutes with the three 5-minute soaks; `--quick` a tenth of every profile). It writes "
        "`results/stress/report.md` (all tables, memory, the per-packet breakdown), PNG plots and "
        "json, and this section.", "",
        f"Measured {res['time'][:16].replace('T', ' ')} UTC on {m['cpu']} ({m['cpus']} CPUs, shared "
        f"with other jobs; load average {m['loadavg_at_start'][0]:.1f} at the start, "
        f"{m.get('loadavg_at_end', [0])[0]:.1f} at the end), {m['chromium']}, Pyodide WebLoop "
        f"mode `{res['webloop']}`. Compare within one run: the load moves every number.", "",
        *rows, "", *soak_line,
        "Where a packet's time goes in the browser (crossings, copies, Python, JS): "
        "`results/stress/report.md`, from the profile in `results/push-browser.md`.", ""])


# ---------------------------------------------------------------- plots
def plots(res: dict, out: Path) -> list[Path]:
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rts = list(res["runs"])
    profiles = res["profiles"]
    written = []

    def grid(title, shown=profiles):
        cols = 3
        rows = (len(shown) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(15, 4.2 * rows), squeeze=False)
        fig.suptitle(f"{title} - {res['time'][:16]} UTC", fontsize=13)
        for ax in axes.flat[len(shown):]:
            ax.axis("off")
        return fig, list(axes.flat)

    fig, axes = grid("Packets per second, 100 ms bins (solid: echoes received; dashed: sent)",
                     [p for p in profiles if p != "quic"])
    for ax, profile in zip(axes, [p for p in profiles if p != "quic"], strict=False):
        for rt in rts:
            s = res["runs"][rt].get(profile, {})
            for key, style, label in (("recv_per_s", "-", LABELS.get(rt, rt)), ("sent_per_s", "--", None)):
                series = s.get(key)
                if series:
                    ax.plot([i * 0.1 for i in range(len(series))], series, style, label=label,
                            color=COLORS.get(rt), linewidth=1.2 if style == "-" else 0.8,
                            marker="." if len(series) < 15 else None)
        ax.set_title(profile)
        ax.set_xlabel("seconds from the first send")
        ax.set_ylabel("per second" + (" (back: every 16th)" if profile == "burst_udp" else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(out / "rate_over_time.png")
    fig.savefig(written[-1], dpi=80)
    plt.close(fig)

    fig, axes = grid("Round-trip latency CDF")
    for ax, profile in zip(axes, profiles, strict=False):
        for rt in rts:
            cdf = res["runs"][rt].get(profile, {}).get("latency", {}).get("cdf_us")
            if cdf:
                ax.plot([v / 1000 for v in cdf], [i / (len(cdf) - 1) for i in range(len(cdf))],
                        label=LABELS.get(rt, rt), color=COLORS.get(rt))
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())   # decades only: readable
        ax.set_title(profile if profile != "quic" else "quic (handshake time)")
        ax.set_xlabel("round trip, ms (log)")
        ax.set_ylabel("fraction of packets")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(out / "latency_cdf.png")
    fig.savefig(written[-1], dpi=80)
    plt.close(fig)

    # Memory: every profile one after the other on one time axis per runtime.
    fig, axes = plt.subplots(1, 2, figsize=(15, 4.5))
    fig.suptitle(f"Memory through the profiles - {res['time'][:16]} UTC", fontsize=13)
    for ax, rt_group, keys in ((axes[0], ["cpython"], ["rss_mb"]),
                               (axes[1], ["iwa", "iwa-js"],
                                ["renderer_pss_mb", "chromium_pss_mb", "wasm_mb", "js_heap_mb"])):
        offset = 0.0
        for rt in rt_group:
            if rt not in res["runs"]:
                continue
            traces: dict = {k: ([], []) for k in keys}
            for profile in profiles:
                samples = [x for x in res["runs"][rt].get(profile, {}).get("memory", []) if "error" not in x]
                for x in samples:
                    for k in keys:
                        if x.get(k) is not None:
                            traces[k][0].append(offset + x["t"])
                            traces[k][1].append(x[k])
                if samples:
                    ax.axvline(offset, color="grey", alpha=0.2)
                    ax.text(offset, 0, f" {rt} {profile}", rotation=90, fontsize=7, va="bottom", alpha=0.6)
                    offset += samples[-1]["t"] + 0.5
            for k, (xs, ys) in traces.items():
                if xs:
                    ax.plot(xs, ys, label=f"{rt} {k[:-3]}", linewidth=1.2)
        ax.set_xlabel("seconds of profile run (profiles back to back)")
        ax.set_ylabel("MB")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("CPython endpoint process RSS")
    axes[1].set_title("Chromium (PSS: app renderer, all processes), page JS heap, Pyodide wasm")
    fig.tight_layout()
    written.append(out / "memory.png")
    fig.savefig(written[-1], dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.38
    pairs = (("cpython", "Python in the IWA / CPython"), ("iwa-js", "Python in the IWA / plain JS in the IWA"))
    for i, (base, label) in enumerate(pairs):
        vals = []
        for profile in profiles:
            py = headline(res["runs"].get(PY, {}).get(profile, {"error": 1}))
            b = headline(res["runs"].get(base, {}).get(profile, {"error": 1}))
            vals.append(py / b if py and b else 0)
        xs = [j + (i - 0.5) * width for j in range(len(profiles))]
        bars = ax.bar(xs, vals, width, label=label, color=["#3572A5", "#e6a700"][i])
        for x, v in zip(xs, vals, strict=True):
            ax.text(x, v, f"{v:.2f}" if v else "n/a", ha="center", va="bottom", fontsize=8)
        del bars
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(profiles)))
    ax.set_xticklabels([p if p != "quic" else "quic handshakes" for p in profiles])
    ax.set_ylabel("ratio of rates")
    ax.set_title(f"Ratios of the headline rate - {res['time'][:16]} UTC")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    written.append(out / "ratios.png")
    fig.savefig(written[-1], dpi=80)
    plt.close(fig)
    return written


def render(res: dict, out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(tables(res))
    (out / "readme-performance.md").write_text(readme_section(res))
    return [out / "report.md", out / "readme-performance.md", *plots(res, out)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", type=Path, help="render a saved run instead of running")
    ap.add_argument("--runtimes", default="cpython,iwa,iwa-js")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--soak", action="store_true", help="add the 5-minute constant-rate soak")
    ap.add_argument("--webloop", default=None, choices=("off", "task", "microtask"),
                    help="Pyodide WebLoop mode (default: socketiwa's default)")
    ap.add_argument("--no-quic", action="store_true", help="leave out the QUIC profile")
    ap.add_argument("--soak-runtimes", default=",".join(run.SOAK_RUNTIMES))
    ap.add_argument("--soak-seconds", type=float, default=None, help="soak length (default 300)")
    ap.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    ap.add_argument("--out-dir", type=Path, default=OUT,
                    help="write report.md and the plots here (default results/stress; another "
                    "folder leaves README.md alone)")
    ap.add_argument("--add-soak", type=Path, action="append", default=[],
                    help="a side run's json (run.py --only soak_udp --out ...): its soaks join this "
                    "report's and are saved into the json rendered")
    args = ap.parse_args()
    if args.source:
        res = json.loads(args.source.read_text())
    else:
        res = run.run_all(args.runtimes.split(","), 0.1 if args.quick else 1.0, args.soak, args.webloop,
                          not args.no_quic, soak_runtimes=tuple(args.soak_runtimes.split(",")),
                          soak_seconds=args.soak_seconds)
        print(f"wrote {run.save(res)}")
    for path in args.add_soak:
        side = json.loads(path.read_text())
        for rt, runs in side["runs"].items():
            if "soak_udp" in runs:
                summary = runs["soak_udp"]
                load = side["machine"]["loadavg_at_start"][0]
                label = f"{rt} ({summary.get('send_rate', '?')}/s, {side['time'][11:16]} UTC, load {load:.0f})"
                res.setdefault("extra_soaks", [])
                res["extra_soaks"] = [e for e in res["extra_soaks"] if e["label"] != label]
                res["extra_soaks"].append({"label": label, "source": path.name, "summary": summary})
        if args.source:
            args.source.write_text(json.dumps(res, indent=1))
    for path in render(res, args.out_dir):
        print(f"wrote {path}")
    if (not args.no_readme and args.out_dir == OUT and res["scale"] == 1.0
            and update_readme(readme_section(res))):
        print("updated README.md (the stress section)")


if __name__ == "__main__":
    main()
