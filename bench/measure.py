"""Loss and latency of a run: the simulator's ledger joined to what the stores hold."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg2


@dataclass(frozen=True)
class LedgerRow:
    """One published message as the simulator recorded it."""

    device_id: str
    epoch: int
    seq: int
    msg_type: str
    publish_ts: float  # unix seconds


def read_ledger(path: Path) -> list[LedgerRow]:
    """Parse the simulator's CSV ledger (device_id,epoch,seq,msg_type,publish_ts)."""
    rows = []
    with path.open() as fh:
        for rec in csv.DictReader(fh):
            ts = rec["publish_ts"]
            when = float(ts) if ts.replace(".", "", 1).isdigit() else datetime.fromisoformat(ts).timestamp()
            rows.append(LedgerRow(rec["device_id"], int(rec["epoch"]), int(rec["seq"]), rec["msg_type"], when))
    return rows


def percentiles(values: list[float], points=(50, 95, 99, 100)) -> dict[str, float]:
    """Nearest-rank percentiles, in the unit of the values; empty input gives an empty dict."""
    if not values:
        return {}
    ordered = sorted(values)
    out = {}
    for p in points:
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        out["max" if p == 100 else f"p{p}"] = ordered[index]
    return out


def series_outcome(dsn: str, ledger: list[LedgerRow]) -> dict:
    """Lost / duplicated telemetry datagrams and publish -> stored latency from the telemetry table."""
    published = {(r.device_id, r.seq): r.publish_ts for r in ledger if r.msg_type == "telemetry"}
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT device_id, seq, count(*), extract(epoch FROM min(stored_at))::float8 "
                        "FROM telemetry GROUP BY device_id, seq")
            stored = {(d, s): (n, at) for d, s, n, at in cur.fetchall()}
    finally:
        conn.close()
    lost = [k for k in published if k not in stored]
    duplicated = [k for k, (n, _) in stored.items() if n > 1]
    latencies = [stored[k][1] - ts for k, ts in published.items() if k in stored]
    return {"published": len(published), "stored": sum(n for n, _ in stored.values()), "lost": len(lost),
            "duplicated": len(duplicated), "latency_ms": {k: v * 1000 for k, v in percentiles(latencies).items()}}


def archive_outcome(first_seen: dict[tuple[str, int], float], ledger: list[LedgerRow]) -> dict:
    """Publish -> first listed in the archive, for the sampled devices (resolution: the probe interval)."""
    sent = {(r.device_id, r.seq): r.publish_ts for r in ledger if r.msg_type == "telemetry"}
    latencies = [seen - sent[k] for k, seen in first_seen.items() if k in sent]
    return {"sampled": len(latencies), "latency_ms": {k: v * 1000 for k, v in percentiles(latencies).items()}}


def event_outcome(dsn: str, ledger: list[LedgerRow]) -> dict:
    """Publish of the datagram carrying the breaching sample -> event row, and -> first notification attempt."""
    import bisect

    sends: dict[str, list[float]] = {}
    for r in ledger:
        if r.msg_type == "telemetry":
            sends.setdefault(r.device_id, []).append(r.publish_ts)
    for times in sends.values():
        times.sort()
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("""
                SELECT e.device_id, extract(epoch FROM e.first_ts)::float8, extract(epoch FROM e.created_at)::float8,
                       extract(epoch FROM min(a.started_at))::float8
                FROM events e
                LEFT JOIN notifications n ON n.event_id = e.id
                LEFT JOIN notification_attempts a ON a.notification_id = n.id
                WHERE e.rule_kind = 'threshold'
                GROUP BY e.id""")
            rows = cur.fetchall()
    finally:
        conn.close()
    to_event, to_notify = [], []
    for device_id, sample_ts, created, attempt in rows:
        times = sends.get(device_id, [])
        i = bisect.bisect_left(times, sample_ts - 0.001)  # samples travel in the next datagram the device sends
        if i == len(times):
            continue
        to_event.append(created - times[i])
        if attempt:
            to_notify.append(attempt - times[i])
    return {"events": len(rows),
            "publish_to_event_ms": {k: v * 1000 for k, v in percentiles(to_event).items()},
            "publish_to_notification_ms": {k: v * 1000 for k, v in percentiles(to_notify).items()}}


def timeline(dsn: str, ledger: list[LedgerRow], t0: float) -> list[dict]:
    """Per second since t0: messages published, rows stored, and publish -> stored p50/p99 of that second."""
    published_at = {(r.device_id, r.seq): r.publish_ts for r in ledger if r.msg_type == "telemetry"}
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT device_id, seq, extract(epoch FROM stored_at)::float8 FROM telemetry")
            stored = cur.fetchall()
    finally:
        conn.close()
    seconds: dict[int, dict] = {}
    for ts in published_at.values():
        seconds.setdefault(int(ts - t0), {"published": 0, "stored": 0, "lat": []})["published"] += 1
    for device_id, seq, at in stored:
        bucket = seconds.setdefault(int(at - t0), {"published": 0, "stored": 0, "lat": []})
        bucket["stored"] += 1
        sent = published_at.get((device_id, seq))
        if sent is not None:
            seconds.setdefault(int(sent - t0), {"published": 0, "stored": 0, "lat": []})["lat"].append(at - sent)
    out = []
    for second in sorted(seconds):
        b = seconds[second]
        p = percentiles(b["lat"])
        out.append({"t": second, "published_per_s": b["published"], "stored_per_s": b["stored"],
                    "p50_ms": p.get("p50", 0) * 1000, "p99_ms": p.get("p99", 0) * 1000})
    return out
