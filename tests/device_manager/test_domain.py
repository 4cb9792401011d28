"""Domain rules without Flask: role ranks, command checks and dispatch, config versions, OTA summaries."""

from __future__ import annotations

import pytest

from device_manager.service import commands, configs, ota
from device_manager.service.roles import Role, allows


@pytest.mark.parametrize(("role", "minimum", "expected"), [
    ("admin", Role.ADMIN, True), ("admin", Role.VIEWER, True), ("operator", Role.ADMIN, False),
    ("operator", Role.OPERATOR, True), ("viewer", Role.OPERATOR, False), ("viewer", Role.VIEWER, True),
    ("root", Role.VIEWER, False), (None, Role.VIEWER, False), ("", Role.VIEWER, False),
])
def test_role_ranks(role, minimum, expected):
    assert allows(role, minimum) is expected


def test_start_ota_parameters_are_checked_in_spec_names():
    good = {"fw_version": "1.2", "fw_url": "http://x/fw.bin", "fw_sha256": "0" * 64, "fw_size_bytes": 10}
    assert commands.check("start_ota", good) == good
    for bad in ({**good, "fw_sha256": "A" * 64}, {**good, "fw_size_bytes": 0}, {**good, "fw_size_bytes": True},
                {"fw_version": "1"}):
        with pytest.raises(commands.CommandError) as exc:
            commands.check("start_ota", bad)
        assert exc.value.field_errors["params"]
    with pytest.raises(commands.CommandError):
        commands.check("self_destruct", {})


def test_legacy_start_ota_names_are_renamed():
    legacy = {"fw_version": "1.2", "url": "http://x/fw.bin", "sha256": "0" * 64, "size": 10, "note": "kept"}
    assert commands.check("start_ota", legacy) == {"fw_version": "1.2", "fw_url": "http://x/fw.bin",
                                                   "fw_sha256": "0" * 64, "fw_size_bytes": 10, "note": "kept"}
    with pytest.raises(commands.CommandError) as exc:  # both spellings of one parameter: which one was meant?
        commands.check("start_ota", {**legacy, "fw_url": "http://y/fw.bin"})
    assert exc.value.field_errors["params"]["_schema"] == ["Give url or fw_url, not both."]
    assert commands.check("reboot", {"url": "x"}) == {"url": "x"}  # only start_ota has these names
    assert commands.ota_params("2.0.0", "http://x", "a" * 64, 5) == {
        "fw_version": "2.0.0", "fw_url": "http://x", "fw_sha256": "a" * 64, "fw_size_bytes": 5}


class _Publisher:
    def __init__(self, acked):
        self.acked, self.seen = acked, []

    def publish_many(self, outgoing):
        self.seen.extend(outgoing)
        return {c.cmd_id for c in outgoing if c.cmd_id in self.acked}


class _Store:
    def __init__(self):
        self.marked = []

    def mark_sent(self, cmd_ids):
        self.marked.extend(cmd_ids)
        return len(cmd_ids)


def test_dispatch_marks_only_acknowledged_commands_sent():
    out = [commands.Outgoing("d1", "c1", "reboot"), commands.Outgoing("d2", "c2", "reboot")]
    publisher, store = _Publisher({"c2"}), _Store()
    assert commands.dispatch(publisher, store, out) == {"c2"}
    assert store.marked == ["c2"] and len(publisher.seen) == 2
    assert commands.dispatch(_Publisher(set()), store, []) == set()


def test_config_version_moves_only_on_change():
    desired = {"send_interval_s": 5}
    assert configs.next_version(None, 0, desired) == 1
    assert configs.next_version(desired, 3, dict(desired)) is None
    assert configs.next_version(desired, 3, {"send_interval_s": 6}) == 4
    assert configs.command_params({**desired, "brokers": [{"host": "b", "port": 1}]}) == {
        "send_interval_s": 5, "brokers": [{"host": "b", "port": 1}]}  # flat spec params, no version key
    assert configs.in_sync(desired, 4, {"x": 1}, 4) and not configs.in_sync(desired, 4, desired, 3)
    assert configs.in_sync(desired, 4, desired, None) and not configs.in_sync(desired, 4, None, None)


def test_ota_summary():
    s = ota.summarise({"success": 2, "failed": 1, "downloading": 1}, [(100.0, 2), (0.0, 1), (40.0, 1)])
    assert s["total"] == 4 and s["finished"] == 3 and s["complete"] is False
    assert s["states"]["pending"] == 0 and s["success_pct"] == 50.0 and s["progress_pct"] == 60.0
    assert ota.summarise({})["total"] == 0 and ota.summarise({"success": 1}, [(100.0, 1)])["complete"] is True


def test_desired_schema_covers_the_config_keys():
    from device_manager.schemas.configs import DesiredConfigSchema

    assert set(DesiredConfigSchema().fields) == set(configs.CONFIG_KEYS)
