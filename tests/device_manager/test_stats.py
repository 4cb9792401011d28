"""Stats API: every figure moves by exactly what the test wrote; rates over the window; roles; bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.device_manager.conftest import assert_error
from tests.device_manager.ops_data import insert_datagrams, insert_dead_letter, insert_event

URL = "/api/v1/stats"


def flatten(body: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in body.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_figures_move_by_what_was_written(client, auth, db, device_type, uid):
    before = flatten(client.get(URL, headers=auth["viewer"]).get_json())
    with db.transaction() as cur:
        for i, (status, conn) in enumerate((("maintenance", "online"), ("active", "offline"))):
            cur.execute("INSERT INTO devices (device_id, name, device_type_id, status, connection_status) "
                        "VALUES (%s, 'n', %s, %s, %s)", (f"st-{uid}-{i}", device_type["id"], status, conn))
    insert_event(db, f"st-{uid}-0", severity="critical")
    insert_event(db, f"st-{uid}-0", severity="warning", status="acknowledged")
    insert_event(db, f"st-{uid}-0", severity="info", status="resolved")
    now = datetime.now(UTC)
    reading = [(now, "temperature", 21.0, "Cel"), (now, "voltage_dc", 750.0, "V")]
    insert_datagrams(db, [{"device_id": f"st-{uid}-0", "ts": now - timedelta(seconds=i), "measurements": reading,
                           "received_at": now} for i in range(3)]
                     + [{"device_id": f"st-{uid}-1", "ts": now - timedelta(minutes=20), "measurements": reading,
                         "received_at": now - timedelta(minutes=10)}])  # outside the 5-minute window
    reason = f"reason_{uid}"
    insert_dead_letter(db, reason=reason)
    insert_dead_letter(db, reason=reason)

    resp = client.get(URL, headers=auth["viewer"])
    assert resp.status_code == 200
    after = flatten(resp.get_json())
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert delta.pop("ingest.datagrams_per_s") == pytest.approx(3 / 300, abs=1e-3)
    assert delta.pop("ingest.measurements_per_s") == pytest.approx(6 / 300, abs=1e-3)
    assert delta.pop("ingest.rejected_per_s") == pytest.approx(2 / 300, abs=1e-3)
    assert delta == {
        "devices.total": 2, "devices.by_status.maintenance": 1, "devices.by_status.active": 1,
        "devices.by_connection.online": 1, "devices.by_connection.offline": 1,
        "events.open_by_severity.critical": 1, "events.open_by_severity.warning": 1,
        "events.by_status.open": 1, "events.by_status.acknowledged": 1,
        "ingest.datagrams": 3, "ingest.measurements": 6, "ingest.rejected": 2,
        f"ingest.reject_reasons.{reason}": 2, "dead_letters.parked": 2,
    }
    assert after["ingest.window_s"] == 300


def test_window_parameter(client, auth, db):
    insert_dead_letter(db, reason="window_probe")
    body = client.get(f"{URL}?window_s=60", headers=auth["viewer"]).get_json()
    assert body["ingest"]["window_s"] == 60 and body["ingest"]["reject_reasons"]["window_probe"] >= 1
    for query in ("window_s=5", "window_s=3601", "window_s=abc", "x=1"):
        assert_error(client.get(f"{URL}?{query}", headers=auth["viewer"]), 422, "validation_error")


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("operator", 200), ("viewer", 200), (None, 401)])
def test_roles(client, auth, role, status):
    assert client.get(URL, headers=auth[role]).status_code == status
