"""Pure report logic: a load step's figures from its ledger and what was stored, and the verdicts over steps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bench.measure import Key, LedgerRow

P99_LIMIT_MS = 1000.0  # issue 10's bar: p99 publish -> series row under 1 s


def percentiles(values: Iterable[float], points=(50, 95, 99, 100)) -> dict[str, float]:
    """Nearest-rank percentiles, in the unit of the values; empty input gives an empty dict."""
    ordered = sorted(values)
    if not ordered:
        return {}
    out = {}
    for p in points:
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        out["max" if p == 100 else f"p{p}"] = ordered[index]
    return out


def _ms(values: Iterable[float]) -> dict[str, float]:
    return {k: v * 1000 for k, v in percentiles(values).items()}


def sent_telemetry(rows: Iterable[LedgerRow]) -> dict[Key, float]:
    """(device_id, seq) -> publish time of every telemetry datagram in a ledger."""
    return {(r.device_id, r.seq): r.publish_ts for r in rows if r.msg_type == "telemetry"}


def steady(sent: Mapping[Key, float], warmup: float) -> dict[Key, float]:
    """The datagrams published after the fleet's warm-up (each device's first send falls within one interval)."""
    if not sent:
        return {}
    start = min(sent.values()) + warmup
    later = {k: ts for k, ts in sent.items() if ts >= start}
    return later or dict(sent)  # a step shorter than its warm-up is all warm-up: measure all of it


def series_outcome(sent: Mapping[Key, float], stored: Mapping[Key, tuple[int, float]]) -> dict:
    """Exactly-once check and publish -> series row latency of the sent datagrams."""
    mine = {k: stored[k] for k in sent if k in stored}
    return {"published": len(sent), "stored": len(mine), "rows": sum(n for n, _ in mine.values()),
            "lost": len(sent) - len(mine), "duplicated": sum(1 for n, _ in mine.values() if n > 1),
            "latency_ms": _ms(at - sent[k] for k, (_, at) in mine.items())}


def rates(sent: Mapping[Key, float], stored: Mapping[Key, tuple[int, float]],
          archived: Mapping[Key, float] | None = None) -> dict[str, float]:
    """Offered msg/s over the publish span; delivered msg/s from the first publish until the last of them was in the
    series table and (for the sampled devices) in the archive, so a lagging archive lowers it."""
    if not sent:
        return {"offered_per_s": 0.0, "delivered_per_s": 0.0}
    first, last = min(sent.values()), max(sent.values())
    done = [stored[k][1] for k in sent if k in stored]
    done_archive = [archived[k] for k in sent if k in archived] if archived else []
    offered = len(sent) / max(last - first, 1.0)
    delivered = len(done) / max(max(done + done_archive) - first, 1.0) if done else 0.0
    return {"offered_per_s": offered, "delivered_per_s": delivered}


def archive_outcome(sent: Mapping[Key, float], devices: Iterable[str], first_seen: Mapping[Key, float],
                    lines: Mapping[Key, int]) -> dict:
    """Exactly-once check and publish -> first listed in the archive, for the sampled devices."""
    sampled = set(devices)
    expected = [k for k in sent if k[0] in sampled]
    return {"devices": len(sampled), "published": len(expected),
            "lost": sum(1 for k in expected if lines.get(k, 0) == 0),
            "duplicated": sum(1 for k in expected if lines.get(k, 0) > 1),
            "latency_ms": _ms(first_seen[k] - sent[k] for k in expected if k in first_seen)}


def event_outcome(rows: Iterable[LedgerRow], events: Iterable[tuple[str, float, float, float | None]]) -> dict:
    """Publish of the datagram carrying the breaching sample -> event row, and -> first notification attempt."""
    import bisect

    sends: dict[str, list[float]] = {}
    for r in rows:
        if r.msg_type == "telemetry":
            sends.setdefault(r.device_id, []).append(r.publish_ts)
    for times in sends.values():
        times.sort()
    events = list(events)
    to_event, to_notify = [], []
    for device_id, sample_ts, created, attempt in events:
        times = sends.get(device_id, [])
        i = bisect.bisect_left(times, sample_ts - 0.001)  # samples travel in the next datagram the device sends
        if i == len(times):
            continue
        to_event.append(created - times[i])
        if attempt:
            to_notify.append(attempt - times[i])
    return {"events": len(events), "publish_to_event_ms": _ms(to_event),
            "publish_to_notification_ms": _ms(to_notify)}


def growing_queues(backlogs: list[Mapping[str, int]], tolerance: float) -> list[str]:
    """Queues whose depth at the end of a step stayed above its first half's peak by more than `tolerance`."""
    if len(backlogs) <= 4:  # too few samples to tell a trend from a burst
        return []
    names = sorted({q for b in backlogs for q in b})
    half = backlogs[: len(backlogs) // 2]
    return [q for q in names
            if min(b.get(q, 0) for b in backlogs[-3:]) > max(b.get(q, 0) for b in half) + tolerance]


def cpu_per_1000(before: Mapping[str, float], after: Mapping[str, float], messages: int) -> dict[str, float]:
    """CPU seconds each named process spent per 1,000 messages stored over a step."""
    if messages <= 0:
        return {}
    return {name: 1000 * (after[name] - before.get(name, 0.0)) / messages for name in after}


def verdict(step: Mapping, p99_limit_ms: float = P99_LIMIT_MS) -> list[str]:
    """Why a step does not count as sustained; empty when it does."""
    series, archive = step["series"], step["archive"]
    reasons = []
    p99 = series["latency_ms"].get("p99")
    if p99 is None or p99 >= p99_limit_ms:
        reasons.append(f"p99 {p99:.0f} ms >= {p99_limit_ms:.0f} ms" if p99 is not None else "nothing stored")
    if series["lost"] or series["duplicated"]:
        reasons.append(f"series lost {series['lost']}, duplicated {series['duplicated']}")
    if archive["lost"] or archive["duplicated"]:
        reasons.append(f"archive (sampled) lost {archive['lost']}, duplicated {archive['duplicated']}")
    if step["growing"]:
        reasons.append("backlog growing: " + ", ".join(step["growing"]))
    return reasons


def sustained(steps: list[Mapping]) -> Mapping | None:
    """The last step of the unbroken run of good steps from the first: the highest rate the platform kept up with."""
    best = None
    for step in steps:
        if step["reasons"]:
            break
        best = step
    return best


def ratio(rate: float, baseline: float) -> float | None:
    """rate / baseline, or None without a baseline."""
    return rate / baseline if baseline > 0 else None


def timeline(sent: Mapping[Key, float], stored: Mapping[Key, tuple[int, float]], t0: float) -> list[dict]:
    """Per second since t0: datagrams published, first stored, and p50/p99 publish -> stored of that second's sends."""
    seconds: dict[int, dict] = {}

    def bucket(ts: float) -> dict:
        return seconds.setdefault(int(ts - t0), {"published": 0, "stored": 0, "lat": []})

    for key, ts in sent.items():
        bucket(ts)["published"] += 1
        if key in stored:
            at = stored[key][1]
            bucket(at)["stored"] += 1
            bucket(ts)["lat"].append(at - ts)
    out = []
    for second in range(min(seconds, default=0), max(seconds, default=-1) + 1):  # idle seconds too: a gap is zero
        b = seconds.get(second, {"published": 0, "stored": 0, "lat": []})
        p = _ms(b["lat"])
        out.append({"t": second, "published_per_s": b["published"], "stored_per_s": b["stored"],
                    "p50_ms": p.get("p50"), "p99_ms": p.get("p99")})
    return out


def headline(steps: list[Mapping], baseline: float, data_points: float) -> dict:
    """The figures a run is summed up by: its sustained step, else the lowest step with why it fell short."""
    best = sustained(steps)
    step = best or (steps[0] if steps else None)
    if step is None:
        return {"step": None, "sustained": False, "msgs_per_s": 0.0, "data_points_per_s": 0.0, "ratio": None}
    rate = step["delivered_per_s"]
    return {"step": step, "sustained": best is not None, "msgs_per_s": rate, "data_points_per_s": rate * data_points,
            "ratio": ratio(rate, baseline)}
