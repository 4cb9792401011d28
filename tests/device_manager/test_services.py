"""Use-case services against in-memory fakes of their ports: the domain rules no HTTP layer is needed for."""

from __future__ import annotations

import pytest

from device_manager.service.dead_letters import DeadLetterService, Handled
from device_manager.service.devices import DeviceService
from device_manager.service.errors import Conflict, Invalid, NotFound
from device_manager.service.rules import RuleService
from device_manager.service.users import UserService


class _Users:
    def __init__(self, *users):
        self.rows = {u["id"]: dict(u) for u in users}

    def get(self, user_id):
        return self.rows.get(user_id)

    def update(self, user_id, changes):
        self.rows[user_id].update(changes)
        return self.rows[user_id]

    def delete(self, user_id):
        return self.rows.pop(user_id, None) is not None

    def count_active_admins(self):
        return sum(1 for u in self.rows.values() if u["role"] == "admin" and u["is_active"])


class _Hasher:
    def hash_password(self, password):
        return "h:" + password

    def verify_password(self, stored, password):
        return stored == "h:" + password


def _admin(n: int, active: bool = True) -> dict:
    return {"id": f"a{n}", "role": "admin", "is_active": active}


def test_the_last_active_admin_cannot_be_demoted_or_disabled():
    users = _Users(_admin(1), _admin(2, active=False))
    service = UserService(users, _Hasher(), None)
    for change in ({"role": "operator"}, {"is_active": False}):
        with pytest.raises(Conflict):
            service.update("a1", change)
    assert users.rows["a1"]["role"] == "admin" and users.rows["a1"]["is_active"]
    users.rows["a2"]["is_active"] = True  # with a second active admin the demotion is fine
    assert service.update("a1", {"role": "viewer", "password": "pw"})["password_hash"] == "h:pw"


def test_users_cannot_delete_themselves():
    service = UserService(_Users(_admin(1)), _Hasher(), None)
    with pytest.raises(Conflict):
        service.delete("a1", "a1")
    with pytest.raises(NotFound):
        service.delete("missing", "a1")


class _Rules:
    def __init__(self, rule):
        self.rule, self.updates = rule, []

    def get(self, rule_id):
        return self.rule if rule_id == self.rule["id"] else None

    def update(self, rule_id, data):
        self.updates.append(data)
        return {**self.rule, **data}

    def delete(self, rule_id):
        return self.rule["kind"] if rule_id == self.rule["id"] else None


class _Notices:
    def __init__(self):
        self.sent = []

    def notify_rules_changed(self, rule_id, change):
        self.sent.append((rule_id, change))
        return True


def test_built_in_rules_are_only_tuned_never_deleted_and_only_changes_are_announced():
    rules, notices = _Rules({"id": "r1", "kind": "offline", "builtin": True, "scope": "all"}), _Notices()
    service = RuleService(rules, notices)
    with pytest.raises(Invalid) as bad:
        service.update("r1", {"metric": "v"})
    assert bad.value.details == {"json": {"metric": ["Not editable on a built-in rule."]}}
    with pytest.raises(Invalid):
        service.update("r1", {"params": {"factor": 0}})
    with pytest.raises(Conflict):
        service.delete("r1")
    assert notices.sent == [] and rules.updates == []
    service.update("r1", {"params": {"factor": 3}})
    assert notices.sent == [("r1", "updated")]


def test_rescoping_a_threshold_rule_clears_the_ids_the_new_scope_does_not_use():
    rules = _Rules({"id": "r1", "kind": "threshold", "builtin": False, "scope": "device", "device_id": "d1",
                    "device_type": None})
    RuleService(rules, _Notices()).update("r1", {"scope": "all"})
    assert rules.updates == [{"scope": "all", "device_id": None, "device_type": None}]
    with pytest.raises(Invalid):
        RuleService(rules, _Notices()).update("r1", {"scope": "device_type"})


class _Letters:
    def __init__(self, row):
        self.row = row

    def replay(self, dl_id, who, publish):
        if not self.row["exchange"]:
            return Handled(None, True, "parked", no_exchange=True)
        publish(self.row)
        return Handled({**self.row, "status": "replayed"}, True)


class _Broker:
    def __init__(self):
        self.published = []

    def publish(self, exchange, routing_key, body, *, message_id=None, headers=None, content_type="x"):
        self.published.append((exchange, routing_key, body, message_id, headers, content_type))


def test_replay_sends_the_original_headers_only_and_refuses_edge_rejects():
    row = {"id": "dl1", "exchange": "iot.ingest", "routing_key": "k", "body": b"{}", "message_id": "m1",
           "headers": {"x-iothub-reason": "bad", "x-death": [], "trace": "t", "content-type": "text/plain"}}
    broker = _Broker()
    assert DeadLetterService(_Letters(row), broker).replay("dl1", "admin")["status"] == "replayed"
    assert broker.published == [("iot.ingest", "k", b"{}", "m1",
                                 {"trace": "t", "x-iothub-replayed-from": "dl1"}, "text/plain")]
    with pytest.raises(Conflict):
        DeadLetterService(_Letters({**row, "exchange": None}), broker).replay("dl1", "admin")


def test_bulk_registration_is_bounded_before_the_store_is_asked():
    class Store:
        def create_many(self, devices):
            raise AssertionError("must not be called")

    with pytest.raises(Invalid) as bad:
        DeviceService(Store(), bulk_max=2).create_many([{}, {}, {}])
    assert bad.value.details == {"json": {"devices": ["Longer than 2."]}}
