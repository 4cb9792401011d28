"""OTA rollouts: the rollout, one start_ota command and one ota_device_states row per device, atomically."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from psycopg2.extras import execute_values

from device_manager.repositories.base import Filters, fetch_page
from device_manager.repositories.devices import device_filters
from device_manager.service.errors import Invalid
from device_manager.service.pagination import Page, PageRequest

ROLLOUT_COLUMNS = "r.id, r.firmware_id, r.fw_version, r.url, r.sha256, r.size_bytes, r.created_by, r.created_at"
ROLLOUT_SORT = {"created_at": "r.created_at", "fw_version": "r.fw_version"}
STATE_COLUMNS = ("d.device_id, o.device_id AS device_uuid, o.cmd_id, o.state, o.progress_pct, o.detail, "
                 "o.updated_at, c.status AS command_status")
STATE_FROM = "ota_device_states o JOIN devices d ON d.id = o.device_id LEFT JOIN commands c ON c.id = o.cmd_id"
STATE_SORT = {"device_id": "d.device_id", "state": "o.state", "progress_pct": "o.progress_pct",
              "updated_at": "o.updated_at"}


class OtaRepository:
    """ota_rollouts and ota_device_states."""

    def __init__(self, db):
        self.db = db

    def create(self, rollout: dict[str, Any], params: dict[str, Any], filters: dict[str, Any], actor: str,
               expires_at: datetime) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Insert the rollout, one start_ota (`params`) and state row per device; returns (rollout, targets)."""
        f = device_filters(filters)
        if "status" not in filters:
            f.add("d.status <> 'decommissioned'")
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute("INSERT INTO ota_rollouts (fw_version, url, sha256, size_bytes, created_by, firmware_id) "
                        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                        (rollout["fw_version"], rollout["url"], rollout["sha256"], rollout["size_bytes"], actor,
                         rollout.get("firmware_id")))
            rollout_id = cur.fetchone()["id"]
            cur.execute(f"SELECT d.id, d.device_id, gen_random_uuid() AS cmd_id FROM devices d "  # noqa: S608
                        f"JOIN device_types t ON t.id = d.device_type_id{f.where()} ORDER BY d.device_id", f.params)
            targets = cur.fetchall()
            if not targets:  # raising here rolls the rollout row back too
                raise Invalid("No device matches the rollout's targets", {"json": {"device_ids": ["No match."]}})
            execute_values(cur, "INSERT INTO commands (id, device_id, cmd, params, rollout_id, created_by, expires_at) "
                                "VALUES %s",
                           [(t["cmd_id"], t["id"], "start_ota", json.dumps(params), rollout_id, actor, expires_at)
                            for t in targets], page_size=1000)
            execute_values(cur, "INSERT INTO ota_device_states (rollout_id, device_id, cmd_id) VALUES %s",
                           [(rollout_id, t["id"], t["cmd_id"]) for t in targets], page_size=1000)
        return self.get(rollout_id), [(str(t["cmd_id"]), t["device_id"]) for t in targets]

    def get(self, rollout_id) -> dict[str, Any] | None:
        """One rollout with its state counts and progress values."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT {ROLLOUT_COLUMNS} FROM ota_rollouts r WHERE r.id = %s", (rollout_id,))  # noqa: S608
            row = cur.fetchone()
            if row is None:
                return None
            return self._with_counts(cur, [dict(row)])[0]

    def list(self, req: PageRequest) -> Page:
        """A page of rollouts (filter fw_version), each with its state counts."""
        f = Filters()
        if "fw_version" in req.filters:
            f.add("r.fw_version = %s", req.filters["fw_version"])
        page = fetch_page(self.db, ROLLOUT_COLUMNS, "ota_rollouts r", f, req, ROLLOUT_SORT, "r.id")
        with self.db.transaction(dict_rows=True) as cur:
            return Page(items=self._with_counts(cur, page.items), total=page.total)

    def states(self, rollout_id, req: PageRequest) -> Page:
        """A page of per-device states of one rollout (filter state)."""
        f = Filters().add("o.rollout_id = %s", rollout_id)
        if "state" in req.filters:
            f.add("o.state = %s", req.filters["state"])
        return fetch_page(self.db, STATE_COLUMNS, STATE_FROM, f, req, STATE_SORT, "o.device_id")

    def exists(self, rollout_id) -> bool:
        """True when the rollout exists."""
        with self.db.transaction() as cur:
            cur.execute("SELECT 1 FROM ota_rollouts WHERE id = %s", (rollout_id,))
            return cur.fetchone() is not None

    @staticmethod
    def _with_counts(cur, rollouts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not rollouts:
            return rollouts
        cur.execute("SELECT rollout_id, state, count(*) AS n, avg(CASE WHEN state = 'success' THEN 100 "
                    "ELSE progress_pct END) AS progress FROM ota_device_states WHERE rollout_id = ANY(%s::uuid[]) "
                    "GROUP BY rollout_id, state", ([str(r["id"]) for r in rollouts],))
        by_rollout: dict[Any, list] = {}
        for row in cur.fetchall():
            by_rollout.setdefault(row["rollout_id"], []).append(row)
        for r in rollouts:
            r["counts"] = {x["state"]: x["n"] for x in by_rollout.get(r["id"], [])}
            r["progress"] = [(float(x["progress"]), x["n"]) for x in by_rollout.get(r["id"], [])]
        return rollouts
