"""Derived power through the real edge and writers: published beside the body, stored as series, not archived."""

from __future__ import annotations

import dataclasses
import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from collector.metering import power
from iothub import topology
from tests.collector.conftest import now_iso
from tests.collector.test_bridge import settle
from tests.support.poll import wait_for


def _dc(dev: str, seq: int) -> dict:
    ts = now_iso()
    return {"v": 2, "device_id": dev, "msg_type": "telemetry", "seq": seq, "ts": ts,
            "measurements": [{"ts": ts, "type": "voltage_dc", "val": 750.0, "unit": "V"},
                             {"ts": ts, "type": "current_dc", "val": -400.0, "unit": "A"}]}


@pytest.mark.parametrize("derive", [True, False], ids=["derive-on", "derive-off"])
def test_edge_publishes_derived_power_when_switched_on(start_edge, device, make_device, tap, derive):
    edge = start_edge(METERING_DERIVE=str(derive).lower())
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    sent = _dc(dev, 1)
    device.send(dev, sent)
    wait_for(lambda: len(out.drain()) >= 1, what="the datagram")
    settle(edge)
    [body] = out.bodies()
    assert body["body"] == sent  # the device's message, untouched
    ts = sent["ts"]
    expected = [{"ts": ts, "type": "power_active", "val": -300_000.0, "unit": "W"}] if derive else None
    assert body.get("derived") == expected


def test_series_stores_derived_values_and_the_archive_keeps_the_device_message(writer_kit):
    kit = writer_kit
    kit.purge(topology.SERIES_QUEUE.name, topology.ARCHIVE_QUEUE.name)
    device, now = f"dv-{kit.uid}", datetime.now(UTC).replace(microsecond=0)
    body = {"measurements": [{"ts": now.isoformat(), "type": "voltage_ac", "val": 25_000, "unit": "V"},
                             {"ts": now.isoformat(), "type": "current_ac", "val": 100, "unit": "A"},
                             {"ts": now.isoformat(), "type": "pf", "val": 0.8}]}
    msg = kit.message(device, "telemetry", body, ts=now, seq=1, device_type="power_meter_ac")
    msg = dataclasses.replace(msg, derived=power.derive(msg.body))
    kit.start("series", kit.settings(WRITERS="series"))
    kit.start("archive", kit.settings(WRITERS="archive", ARCHIVE_BACKEND="filesystem", ARCHIVE_WINDOW_S=60))
    kit.send(msg)

    def stored():
        with kit.db.transaction() as cur:
            cur.execute("SELECT measurements FROM telemetry WHERE device_id = %s", (device,))
            row = cur.fetchone()
            return row and row[0]

    measurements = wait_for(stored, timeout=20, what="series row")
    assert {m["type"]: (m["val"], m["unit"]) for m in measurements} == {
        "voltage_ac": (25_000, "V"), "current_ac": (100, "A"), "pf": (0.8, ""), "power_active": (2e6, "W"),
        "power_apparent": (2.5e6, "VA"), "power_reactive": (pytest.approx(1.5e6), "var")}
    archive = kit.settings(WRITERS="archive", ARCHIVE_BACKEND="filesystem").archive_dir

    def archived() -> list[dict]:
        """The device's lines in the shared archive objects (docs/archive.md)."""
        lines = []
        for path in Path(archive).rglob("raw/**/*.ndjson*"):
            raw = path.read_bytes()
            lines += [d for d in map(orjson.loads, (gzip.decompress(raw) if path.suffix == ".gz" else raw)
                                     .splitlines()) if d["device_id"] == device]
        return lines

    line = wait_for(archived, timeout=20, what="archive")[0]
    assert line["body"] == msg.body and "derived" not in line
    assert now - timedelta(minutes=1) < datetime.fromisoformat(line["ts"])
