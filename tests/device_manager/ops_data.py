"""Test data for the operations endpoints: telemetry rows in daily partitions, rules, events, notifications."""

from __future__ import annotations

import json
import random
import statistics
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2.errors

from device_manager.telemetry.query import bucket_start


def ensure_partition(db, day: datetime) -> None:
    """Create the daily telemetry partition holding `day` unless one already covers it."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    name = f"telemetry_p{start:%Y%m%d}"
    with db.transaction() as cur:
        try:
            cur.execute("SAVEPOINT p")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF telemetry "
                        "FOR VALUES FROM (%s) TO (%s)", (start, start + timedelta(days=1)))
            cur.execute("RELEASE SAVEPOINT p")
        except (psycopg2.errors.InvalidObjectDefinition, psycopg2.errors.DuplicateTable):
            cur.execute("ROLLBACK TO SAVEPOINT p")  # another name already covers the day


def insert_datagrams(db, rows: list[dict]) -> None:
    """Insert telemetry rows: dicts with device_id, ts, measurements [(ts, type, val, unit)], optional seq/type."""
    for day in {r["ts"].date() for r in rows}:
        ensure_partition(db, datetime(day.year, day.month, day.day, tzinfo=UTC))
    with db.transaction() as cur:
        for i, r in enumerate(rows):
            measurements = [{"ts": ts.isoformat(), "type": kind, "val": val, "unit": unit}
                            for ts, kind, val, unit in r["measurements"]]
            cur.execute(
                "INSERT INTO telemetry (device_id, ts, msg_id, device_type, epoch, seq, measurements, received_at) "
                "VALUES (%s, %s, %s, %s, 0, %s, %s, %s)",
                (r["device_id"], r["ts"], uuid.uuid4(), r.get("device_type", "power_meter_dc"), r.get("seq", i),
                 json.dumps(measurements), r.get("received_at", r["ts"])))


def insert_rule(db, name: str, **fields) -> uuid.UUID:
    """A threshold rule straight into the table (for events and subscriptions tests)."""
    values = {"name": name, "kind": "threshold", "scope": "all", "metric": "temperature", "operator": "gt",
              "threshold": 80.0, "severity": "warning", **fields}
    cols = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    with db.transaction() as cur:
        cur.execute(f"INSERT INTO rules ({cols}) VALUES ({marks}) RETURNING id", list(values.values()))  # noqa: S608
        return cur.fetchone()[0]


def insert_event(db, device_id: str, *, rule_id=None, severity: str = "warning", status: str = "open",
                 last_ts: datetime | None = None, rule_kind: str = "threshold") -> uuid.UUID:
    """An event as the rule engine would write it."""
    last_ts = last_ts or datetime.now(UTC)
    with db.transaction() as cur:
        cur.execute(
            "INSERT INTO events (rule_id, rule_name, rule_kind, device_id, device_type, severity, message, status,"
            " first_ts, last_ts, trigger_values, last_value) "
            "VALUES (%s, 'r', %s, %s, 'power_meter_dc', %s, 'temperature high', %s, %s, %s, %s, 91.5) RETURNING id",
            (rule_id, rule_kind, device_id, severity, status, last_ts - timedelta(minutes=1), last_ts,
             json.dumps({"temperature": 91.5})))
        return cur.fetchone()[0]


def insert_notification(db, event_id, *, channel: str = "webhook", status: str = "failed",
                        attempts: int = 2) -> uuid.UUID:
    """A notification with `attempts` recorded attempts."""
    with db.transaction() as cur:
        cur.execute(
            "INSERT INTO notifications (change_id, event_id, channel, target, status, attempts, last_error) "
            "VALUES (%s, %s, %s, 'https://hooks.example.test/x', %s, %s, %s) RETURNING id",
            (uuid.uuid4(), event_id, channel, status, attempts, "HTTP 500" if status == "failed" else None))
        nid = cur.fetchone()[0]
        for n in range(1, attempts + 1):
            cur.execute(
                "INSERT INTO notification_attempts (notification_id, attempt, status, response_code, error,"
                " finished_at) VALUES (%s, %s, %s, %s, %s, now())",
                (nid, n, "failed" if n < attempts or status == "failed" else "sent",
                 500 if n < attempts or status == "failed" else 200, "HTTP 500" if n < attempts else None))
        return nid


def insert_dead_letter(db, *, body: bytes = b'{"x": 1}', exchange: str | None = "iot.telemetry",
                       routing_key: str | None = "telemetry.power_meter_dc.d1", reason: str = "malformed_json",
                       source: str = "collector.series", headers: dict | None = None) -> uuid.UUID:
    """A parked dead letter."""
    with db.transaction() as cur:
        cur.execute(
            "INSERT INTO dead_letters (message_id, source, reason, detail, exchange, routing_key, headers, body) "
            "VALUES (%s, %s, %s, 'detail', %s, %s, %s, %s) RETURNING id",
            (str(uuid.uuid4()), source, reason, exchange, routing_key, json.dumps(headers or {}), body))
        return cur.fetchone()[0]


BASE = datetime(2026, 3, 1, 23, 40, tzinfo=UTC)  # the data crosses midnight: two daily partitions
METRICS = (("voltage_dc", "V"), ("temperature", "Cel"))


def make_datagrams(device_id: str, seed: int) -> tuple[list[dict], list[tuple[datetime, str, float, str]]]:
    """120 datagrams 30 s apart; each carries readings taken 25, 15 and 5 s before its envelope ts."""
    rng = random.Random(seed)
    rows, flat = [], []
    for i in range(120):
        ts = BASE + timedelta(seconds=30 * i)
        readings = [(ts - timedelta(seconds=age), kind, round(rng.uniform(-50, 900), 3), unit)
                    for age in (25, 15, 5) for kind, unit in METRICS]
        if i % 2 == 0:
            readings.append((ts, "current_dc", float(rng.randint(-100, 100)), "A"))
        rows.append({"device_id": device_id, "ts": ts, "measurements": readings, "seq": i})
        flat.extend(readings)
    return rows, flat


def expected(flat, start, end, *, every, agg, metrics=()):
    """Per (metric, unit): {bucket start: aggregate}, computed in Python."""
    buckets: dict[tuple[str, str], dict[datetime, list[tuple[datetime, float]]]] = {}
    for ts, kind, val, unit in flat:
        if start <= ts < end and (not metrics or kind in metrics):
            buckets.setdefault((kind, unit), {}).setdefault(bucket_start(ts, every), []).append((ts, val))
    fn = {"mean": lambda v: statistics.fmean(x for _, x in v), "min": lambda v: min(x for _, x in v),
          "max": lambda v: max(x for _, x in v), "count": len, "last": lambda v: max(v)[1]}[agg]
    return {key: {b: fn(vals) for b, vals in per.items()} for key, per in buckets.items()}


def influx_settings() -> dict | None:
    """INFLUXDB_* from the environment for the contract tests, or None when no InfluxDB is configured."""
    import os

    url = os.environ.get("INFLUXDB_URL")
    if not url:
        return None
    return {"url": url, "token": os.environ.get("INFLUXDB_TOKEN", ""), "org": os.environ.get("INFLUXDB_ORG", "iot-org"),
            "bucket": os.environ.get("INFLUXDB_BUCKET", "iot-metrics")}


def write_influx(conf: dict, rows: list[dict]) -> None:
    """Write datagram rows (as insert_datagrams takes them) through the collector's own InfluxDB series store."""
    from collector.writers.series import Reading, SeriesRecord
    from collector.writers.series_influx import InfluxSeriesStore
    from iothub.contract.ingest import IngestMessage

    records = [SeriesRecord(IngestMessage(str(uuid.uuid4()), r["device_id"], r.get("device_type", "power_meter_dc"),
                                          "telemetry", r["ts"].isoformat(), r.get("seq", i), 0, r["ts"].isoformat(),
                                          "mqtt", {}),
                            r["ts"], r["ts"], tuple(Reading(ts, kind, val, unit)
                                                    for ts, kind, val, unit in r["measurements"]))
               for i, r in enumerate(rows)]
    store = InfluxSeriesStore(conf["url"], conf["token"], conf["org"], conf["bucket"])
    try:
        store.write(records)
    finally:
        store.close()

