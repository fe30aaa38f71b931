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


def peer_flow(peer: dict, flow: int) -> dict:
    return peer.get("udp_flows", {}).get(str(flow), {"received": 0, "duplicated": 0,
                                                     "out_of_order": 0, "seconds": 0.0})


def summarize(profile: str, transport: str, raw: dict, peer: dict) -> dict:
    """One row: sent, received, lost, duplicated, out of order, rate, latency, series."""
    lat = latency(raw.get("rtt_us", []))
    if profile == "quic":
        return {"profile": profile, "transport": "quic", "latency": lat,
                "handshakes": raw["handshakes"], "handshakes_per_s": raw["handshakes_per_s"],
                "bulk": raw["bulk"], "lossy1": raw["lossy1"], "lossy5": raw["lossy5"],
                "sha256_ok": all(raw[k]["sha256_ok"] for k in ("bulk", "lossy1", "lossy5")),
                "relays": peer.get("relays"), "rate": raw["handshakes_per_s"]}
    out: dict = {"profile": profile, "transport": transport, "sent": raw["sent"]}
    if profile == "chaos":
        u, t = raw["udp"], raw["tcp"]
        delivered = sum(peer_flow(peer, f)["received"] for f in u["flows"])
        out.update({
            "received": raw["received"], "lost": (u["sent"] - u["received"]) + t["lost"],
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
        if transport == "udp":
            f = peer_flow(peer, raw["flow"])
            delivered, span = f["received"], f["seconds"]
            out.update({"received": delivered, "lost": raw["sent"] - delivered,
                        "duplicated": f["duplicated"], "out_of_order": f["out_of_order"],
                        "echo_sample_back": raw["received"], "echo_sample_sent": raw["expected_back"],
                        "rate": round(delivered / max(span, raw["send_seconds"], 1e-6))})
        else:
            out.update({"received": raw["received"], "lost": raw["sent"] - raw["received"],
                        "duplicated": raw["duplicated"], "out_of_order": raw["out_of_order"],
                        "rate": round(raw["received"] / raw["seconds"]) if raw["seconds"] else 0})
        out["send_rate"] = round(raw["sent"] / raw["send_seconds"]) if raw["send_seconds"] else 0
        out["corrupt"] = raw["corrupt"]
        out["seconds"] = raw["seconds"]
    else:
        out.update({"received": raw["received"], "lost": raw["sent"] - raw["received"],
                    "duplicated": raw["duplicated"], "out_of_order": raw["out_of_order"],
                    "corrupt": raw["corrupt"], "seconds": raw["seconds"],
                    "rate": round(raw["received"] / raw["seconds"]) if raw["seconds"] else 0,
                    "send_rate": round(raw["sent"] / raw["send_seconds"]) if raw["send_seconds"] else 0})
        if transport == "udp":
            out["delivered_one_way"] = peer_flow(peer, raw["flow"])["received"]
        if "steps" in raw:
            out["steps"] = raw["steps"]
            ok = [s for s in raw["steps"] if s["sent"] and s["received"] / s["sent"] >= 0.99]
            out["max_rate_under_1pct_loss"] = max((s["achieved_rate"] for s in ok), default=0)
            if profile.startswith("ramp"):
                out["rate"] = out["max_rate_under_1pct_loss"]
    if "missing" in raw:
        out["missing"] = raw["missing"]     # the first runs of sequence numbers never seen back
    out["loss_pct"] = round(100 * out["lost"] / out["sent"], 3) if out["sent"] else 0.0
    out["latency"] = lat
    out["sent_per_s"] = [n / BIN_S for n in raw.get("sent_bins", [])]
    out["recv_per_s"] = [n / BIN_S for n in raw.get("recv_bins", [])]
    return out
