"""Exports: telemetry (measured and derived) and energy as CSV and Parquet, streamed; 1 million rows in bounded
memory."""

from __future__ import annotations

import csv
import io
import tracemalloc
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.device_manager.conftest import assert_error
from tests.device_manager.energy_data import dc_samples, hour_ago
from tests.device_manager.ops_data import ensure_partition, insert_datagrams


def get(client, auth, url, role="viewer", **params):
    return client.get(f"{url}?{urlencode(params, doseq=True)}", headers=auth[role])


def _iso(t):
    return t.isoformat().replace("+00:00", "Z")


def test_telemetry_csv_has_measured_and_derived_values(client, auth, db, device):
    t0 = hour_ago(3)
    readings = [(t0, "voltage_dc", 750.0, "V"), (t0, "current_dc", 400.0, "A"), (t0, "power_active", 300e3, "W")]
    insert_datagrams(db, [{"device_id": device["device_id"], "ts": t0, "measurements": readings}])
    resp = get(client, auth, "/api/v1/exports/telemetry", device_id=device["id"], start=_iso(t0),
               end=_iso(t0 + timedelta(hours=1)))
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{device["device_id"]}-telemetry.csv"'
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows == [["device_id", "ts", "metric", "value", "unit"],
                    *[[device["device_id"], _iso(t0), m, repr(v), u] for _, m, v, u in readings]]
    only = get(client, auth, "/api/v1/exports/telemetry", device_id=device["id"], start=_iso(t0),
               end=_iso(t0 + timedelta(hours=1)), metric="power_active").get_data(as_text=True)
    assert only.splitlines()[1:] == [f"{device['device_id']},{_iso(t0)},power_active,300000.0,W"]


def test_energy_parquet_for_a_device_type(client, auth, db, device, device_type):
    h0 = hour_ago(5)
    dc_samples(db, device["device_id"], device_type["name"], h0, range(601), volts=1000.0, amps=300.0)
    resp = get(client, auth, "/api/v1/exports/energy", device_type=device_type["name"], start=_iso(h0),
               end=_iso(h0 + timedelta(hours=1)), format="parquet")
    assert resp.status_code == 200 and resp.mimetype == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(resp.get_data()))
    got = [(r["bucket_start"], r["consumed_wh"], r["covered_s"], r["samples"]) for r in table.to_pylist()]
    # 300 kW for 300 s per bucket = 25 kWh; the sample at 600 s opens a third bucket.
    assert got == [(h0, pytest.approx(25_000.0), 300.0, 300), (h0 + timedelta(seconds=300), pytest.approx(25_000.0),
                                                               300.0, 300), (h0 + timedelta(seconds=600), 0.0, 0.0, 1)]


def test_scope_and_range_are_checked(client, auth, device):
    url = "/api/v1/exports/telemetry"
    assert_error(get(client, auth, url), 422)
    assert_error(get(client, auth, url, device_id=device["id"], device_type="x"), 422)
    assert_error(get(client, auth, url, device_id=device["id"], start="2026-01-01T00:00:00Z",
                     end="2026-03-01T00:00:00Z"), 422)
    assert_error(get(client, auth, url, device_type="no-such-type"), 404)
    assert_error(get(client, auth, url, device_id=device["id"], format="xlsx"), 422)
    assert_error(get(client, auth, url, None, device_id=device["id"]), 401)


MILLION_DATAGRAMS, PER_DATAGRAM = 50_000, 20  # 1,000,000 rows, a DC meter's default 10 s datagram
ROWS = MILLION_DATAGRAMS * PER_DATAGRAM
BOUND = 16 * 1024 * 1024  # the rows as Python tuples or an Arrow table would take well over 50 MB


@pytest.fixture(scope="module")
def million(app):
    """A device with a million readings: 50,000 datagrams of 10 V/I pairs, 10 s apart (about 6 days)."""
    db, t0, name = app.extensions["device_manager"].db, hour_ago(24 * 8), f"million-{uuid.uuid4().hex[:8]}"
    for day in range(8):
        ensure_partition(db, t0 + timedelta(days=day))
    with db.transaction() as cur:
        cur.execute("INSERT INTO devices (device_id, name, device_type_id) SELECT %s, %s, id FROM device_types "
                    "WHERE name = 'power_meter_dc' RETURNING id", (name, name))
        pk = cur.fetchone()[0]
        cur.execute("""
            INSERT INTO telemetry (device_id, ts, msg_id, device_type, epoch, seq, measurements, received_at)
            SELECT %(d)s, %(t0)s + g * interval '10 seconds', gen_random_uuid(), 'power_meter_dc', 0, g,
                   (SELECT jsonb_agg(jsonb_build_object(
                        'ts', %(t0)s + (g * 10 + k / 2) * interval '1 second',
                        'type', CASE WHEN k %% 2 = 0 THEN 'voltage_dc' ELSE 'current_dc' END,
                        'val', 750 + g %% 7 + k, 'unit', CASE WHEN k %% 2 = 0 THEN 'V' ELSE 'A' END))
                    FROM generate_series(0, %(n)s - 1) k),
                   now()
            FROM generate_series(0, %(count)s - 1) g""",
                    {"d": name, "t0": t0, "n": PER_DATAGRAM, "count": MILLION_DATAGRAMS})
    return pk, t0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_million_rows_stream_in_bounded_memory(client, auth, million, fmt, tmp_path):
    pk, t0 = million
    path, lines, size = tmp_path / f"export.{fmt}", 0, 0
    tracemalloc.start()  # before the request: anything that buffered the body (an after_request hook did) counts
    try:
        resp = get(client, auth, "/api/v1/exports/telemetry", device_id=pk, start=_iso(t0),
                   end=_iso(t0 + timedelta(days=7)), format=fmt)
        assert resp.status_code == 200 and resp.is_streamed
        with path.open("wb") as out:  # as a client saving the download: chunk by chunk, nothing kept in memory
            for chunk in resp.response:
                out.write(chunk)
                size, lines = size + len(chunk), lines + chunk.count(b"\n")
        resp.close()
        _, peak_python = tracemalloc.get_traced_memory()
        peak_arrow = pa.default_memory_pool().max_memory()  # Arrow's own pool (never traced), peak of the process
    finally:
        tracemalloc.stop()
    print(f"{fmt}: {size} bytes, python peak {peak_python}, arrow peak {peak_arrow}")
    assert peak_python < BOUND and peak_arrow < BOUND, (peak_python, peak_arrow)
    if fmt == "csv":
        assert lines == ROWS + 1 and size > 3 * BOUND  # every row and the header; the data dwarfs the bound
    else:
        meta = pq.ParquetFile(path).metadata
        assert meta.num_rows == ROWS and meta.num_row_groups == ROWS // 10_000
