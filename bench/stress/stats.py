"""Turn what a profile observed (cases.py / cases.mjs) and what the peer counted into one summary,
the same way for every runtime."""
from __future__ import annotations

CDF_POINTS = 101
BIN_S = 0.1


def percentile(sorted_values: list, q: float):
    """Nearest rank; None for no samples."""
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def latency(rtt_us: list) -> dict:
    v = sorted(rtt_us)
    return {"samples": len(v), "p50_us": percentile(v, 0.5), "p90_us": percentile(v, 0.9),
            "p99_us": percentile(v, 0.99), "p999_us": percentile(v, 0.999),
            "max_us": v[-1] if v else None,
            "cdf_us": [percentile(v, i / (CDF_POINTS - 1)) for i in range(CDF_POINTS)] if v else []}


def hist_percentile(hist: list, total: int, q: float):
    """Nearest rank over a histogram ([[bucket's lowest us, count], ...] in order): the bucket's
    lowest value, within 1.6% of the sample (cases.RttHist)."""
    if not total:
        return None
    rank = min(total - 1, int(q * total))
    seen = 0
    for lower, count in hist:
        seen += count
        if seen > rank:
            return lower
    return hist[-1][0]


def hist_latency(raw: dict) -> dict:
    """latency() from cases.RttHist's output; max is exact."""
    hist = raw.get("rtt_hist", [])
    total = sum(c for _, c in hist)
    return {"samples": total, **{k: hist_percentile(hist, total, q) for k, q in
                                 (("p50_us", 0.5), ("p90_us", 0.9), ("p99_us", 0.99), ("p999_us", 0.999))},
            "min_us": raw.get("rtt_min_us"), "max_us": raw.get("rtt_max_us"),
            "cdf_us": [hist_percentile(hist, total, i / (CDF_POINTS - 1)) for i in range(CDF_POINTS)]
            if total else []}


def peer_kind(peer: dict | None, transport: str) -> dict:
    """The peer's counters of one transport from its flow (or range) report."""
    return (peer or {}).get(transport) or {"received": 0, "duplicated": 0, "out_of_order": 0,
                                          "echoed": 0, "seconds": 0.0}


def directions(sent: int, at_peer: int, echoed: int, back: int, late: int = 0) -> dict:
    """Both sides' counts of one transport, per direction: out (endpoint -> peer: what the
    endpoint sent, what the peer received) and back (peer -> endpoint: what the peer echoed,
    what the endpoint received, ``late`` of it after the profile's window)."""
    return {"out": {"sent": sent, "at_peer": at_peer, "lost": sent - at_peer},
            "back": {"echoed": echoed, "received": back, "late": late, "lost": echoed - back}}


def summarize(profile: str, transport: str, raw: dict, peer: dict | None) -> dict:
    """One row: sent, received, lost, late, duplicated, out of order, rate, latency, series,
    and (``peer``: peer.py's report of the profile's flow or flow range) both sides' counts per
    direction. ``lost`` is what never arrived (the wait ended in silence); ``unresolved`` what
    was still missing when the wait hit its limit; ``late`` arrived after the window."""
    lat = hist_latency(raw) if "rtt_hist" in raw else latency(raw.get("rtt_us", []))
    if profile == "quic":
        return {"profile": profile, "transport": "quic", "latency": lat,
                "handshakes": raw["handshakes"], "handshakes_per_s": raw["handshakes_per_s"],
                "bulk": raw["bulk"], "lossy1": raw["lossy1"], "lossy5": raw["lossy5"],
                "sha256_ok": all(raw[k]["sha256_ok"] for k in ("bulk", "lossy1", "lossy5")),
                "relays": (peer or {}).get("relays"), "rate": raw["handshakes_per_s"]}
    out: dict = {"profile": profile, "transport": transport, "sent": raw["sent"]}
    if profile == "chaos":
        u, t = raw["udp"], raw["tcp"]
        pu, pt = peer_kind(peer, "udp"), peer_kind(peer, "tcp")
        delivered = pu["received"]
        out.update({
            "received": raw["received"], "lost": u.get("lost", u["sent"] - u["received"]) + t["lost"],
            "late": u.get("late", 0) + t.get("late", 0),
            "unresolved": u.get("unresolved", 0) + t.get("unresolved", 0),
            "directions": {"udp": directions(u["sent"], pu["received"], pu["echoed"], u["received"],
                                             u.get("late", 0)),
                           # closed connections only (aborted ones have flows of their own:
                           # their in-flight messages are not a loss)
                           "tcp": directions(t["messages_sent"] - t.get("aborted_sent", 0),
                                             pt["received"], pt["echoed"],
                                             t["messages_back"] - (t.get("aborted_sent", 0)
                                                                   - t["aborted_unanswered"]),
                                             t.get("late", 0))},
            "duplicated": u["duplicated"] + t["duplicated"],
            "out_of_order": u["out_of_order"] + t["out_of_order"],
            "corrupt": u["corrupt"] + t["corrupt"],
            "udp_sent": u["sent"], "udp_delivered": delivered, "udp_received": u["received"],
            "tcp_messages": t["messages_sent"], "tcp_lost": t["lost"], "tcp_bytes": t["bytes_sent"],
            "tcp_connections": t["connections"], "tcp_aborted": t["aborted"],
            # connections whose echoes stopped for 5 s / were still coming at the 20 s limit
            "tcp_unfinished_idle": t.get("unfinished_idle", 0),
            "tcp_unfinished_limit": t.get("unfinished_limit", 0),
            "vanished": raw["vanish"]["connections"], "vanish_ended": raw["vanish"]["ended_by_peer"],
            "refused": raw["refused"]["attempts"], "refused_typed": raw["refused"]["typed_errors"],
            "blackhole_received": raw["blackhole"]["received"], "actions": raw["actions"],
            "unexpected": raw["unexpected"], "seconds": raw["seconds"],
            "rate": round(raw["received"] / raw["seconds"]) if raw["seconds"] else 0})
    elif profile.startswith("burst"):
        # One way: what reached the peer. TCP is echoed in full, so its round trip is the measure.
        f = peer_kind(peer, transport)
        out["directions"] = {transport: directions(raw["sent"], f["received"], f["echoed"],
                                                   raw["received"], raw.get("late", 0))}
        if transport == "udp":
            # lost: on the way out (the peer's count); the echo sample's own losses are in
            # directions and echo_sample_*
            delivered, span = f["received"], f["seconds"]
            out.update({"received": delivered, "lost": raw["sent"] - delivered,
                        "duplicated": f["duplicated"], "out_of_order": f["out_of_order"],
                        "echo_sample_back": raw["received"], "echo_sample_sent": raw["expected_back"],
                        "late": raw.get("late", 0), "unresolved": raw.get("unresolved", 0),
                        "rate": round(delivered / max(span, raw["send_seconds"], 1e-6))})
        else:
            out.update({"received": raw["received"], "lost": raw.get("lost", raw["sent"] - raw["received"]),
                        "late": raw.get("late", 0), "unresolved": raw.get("unresolved", 0),
                        "duplicated": raw["duplicated"], "out_of_order": raw["out_of_order"],
                        "rate": round(raw["received"] / raw["seconds"]) if raw["seconds"] else 0})
        out["send_rate"] = round(raw["sent"] / raw["send_seconds"]) if raw["send_seconds"] else 0
        out["corrupt"] = raw["corrupt"]
        out["seconds"] = raw["seconds"]
    else:
        out.update({"received": raw["received"], "lost": raw.get("lost", raw["sent"] - raw["received"]),
                    "late": raw.get("late", 0), "unresolved": raw.get("unresolved", 0),
                    "duplicated": raw["duplicated"], "out_of_order": raw["out_of_order"],
                    "corrupt": raw["corrupt"], "seconds": raw["seconds"],
                    "rate": round(raw["received"] / raw["seconds"]) if raw["seconds"] else 0,
                    "send_rate": round(raw["sent"] / raw["send_seconds"]) if raw["send_seconds"] else 0})
        f = peer_kind(peer, transport)
        out["directions"] = {transport: directions(raw["sent"], f["received"], f["echoed"],
                                                   raw["received"], raw.get("late", 0))}
        if transport == "udp":
            out["delivered_one_way"] = f["received"]
        if "steps" in raw:
            out["steps"] = raw["steps"]
            ok = [s for s in raw["steps"] if s["sent"] and s["received"] / s["sent"] >= 0.99]
            out["max_rate_under_1pct_loss"] = max((s["achieved_rate"] for s in ok), default=0)
            if profile.startswith("ramp"):
                out["rate"] = out["max_rate_under_1pct_loss"]
    if "missing" in raw:
        out["missing"] = raw["missing"]     # the first runs of sequence numbers never seen back
    for key in ("drain", "stale"):
        if key in raw:
            out[key] = raw[key]
    out["loss_pct"] = round(100 * out["lost"] / out["sent"], 3) if out["sent"] else 0.0
    out["latency"] = lat
    out["sent_per_s"] = [n / BIN_S for n in raw.get("sent_bins", [])]
    out["recv_per_s"] = [n / BIN_S for n in raw.get("recv_bins", [])]
    return out
