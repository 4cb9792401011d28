"""Pure notifier logic, table-style: matching, retry schedule, claim picking, decoding, signing, settings."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest

from iothub.settings import Env, SettingsError
from notifier import events, render, settings
from notifier.channels import webhook
from notifier.policy import RetryPolicy, Subscription, matches, pick, select, target_key
from tests.notifier.support import change

RULE = str(uuid.uuid4())
EVENT = events.decode(json.dumps(change("pm-1", severity="warning", device_type="pm_dc", rule_id=RULE)).encode())


def sub(**kw) -> Subscription:
    return Subscription(id="s", channel="log", target="ops", **kw)


@pytest.mark.parametrize(("subscription", "expected"), [
    (sub(), True),
    (sub(min_severity="info"), True),
    (sub(min_severity="warning"), True),
    (sub(min_severity="critical"), False),
    (sub(enabled=False), False),
    (sub(device_type="pm_dc"), True),
    (sub(device_type="pm_ac"), False),
    (sub(device_id="pm-1"), True),
    (sub(device_id="pm-2"), False),
    (sub(rule_id=RULE), True),
    (sub(rule_id=str(uuid.uuid4())), False),
    (sub(device_type="pm_dc", device_id="pm-1", rule_id=RULE, min_severity="warning"), True),
    (sub(device_type="pm_dc", device_id="pm-1", rule_id=RULE, min_severity="critical"), False),
    (sub(device_type="pm_dc", device_id="pm-9"), False),
])
def test_matches(subscription, expected):
    assert matches(subscription, EVENT.event) is expected


@pytest.mark.parametrize(("severity", "min_severity", "expected"), [
    ("info", "info", True), ("info", "warning", False), ("info", "critical", False),
    ("warning", "info", True), ("warning", "warning", True), ("warning", "critical", False),
    ("critical", "info", True), ("critical", "warning", True), ("critical", "critical", True),
])
def test_min_severity_order(severity, min_severity, expected):
    event = events.decode(json.dumps(change("d", severity=severity)).encode()).event
    assert matches(sub(min_severity=min_severity), event) is expected


def test_select_keeps_only_matching_subscriptions():
    wanted, unwanted = sub(device_id="pm-1"), sub(device_id="pm-2")
    assert select([wanted, unwanted], EVENT.event) == [wanted]


def test_event_without_device_type_fails_a_device_type_filter():
    event = events.decode(json.dumps(change("d", device_type=None)).encode()).event
    assert matches(sub(device_type="pm_dc"), event) is False
    assert matches(sub(), event) is True


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (80, 5.0)])
def test_backoff_ceiling_doubles_up_to_the_cap(attempt, ceiling):
    assert RetryPolicy(max_attempts=5, base=0.5, cap=5.0).ceiling(attempt) == ceiling


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 0.0), (0.5, 1.0), (0.999, 1.998)])
def test_full_jitter_scales_the_ceiling(rand, expected):
    assert RetryPolicy(base=0.5, cap=60).delay(3, lambda: rand) == pytest.approx(expected)


def test_jittered_delays_stay_within_the_ceiling():
    policy = RetryPolicy(base=0.1, cap=1.0)
    delays = [policy.delay(4) for _ in range(500)]
    assert all(0 <= d < 0.8 for d in delays)
    assert len(set(delays)) > 400  # really jittered


@pytest.mark.parametrize(("attempt", "retryable", "gives_up"), [
    (1, True, False), (2, True, False), (3, True, True), (4, True, True), (1, False, True),
])
def test_gives_up_after_max_attempts_or_a_final_error(attempt, retryable, gives_up):
    assert RetryPolicy(max_attempts=3).gives_up(attempt, retryable) is gives_up


@pytest.mark.parametrize(("candidates", "busy", "per_target", "limit", "expected"), [
    ([("a", "x"), ("b", "x"), ("c", "x"), ("d", "y")], {}, 2, 10, ["a", "b", "d"]),
    ([("a", "x"), ("b", "x"), ("d", "y")], {"x": 1}, 2, 10, ["a", "d"]),
    ([("a", "x"), ("b", "y"), ("c", "z")], {}, 2, 2, ["a", "b"]),
    ([("a", "x"), ("b", "x")], {"x": 2}, 2, 5, []),
    ([], {}, 2, 5, []),
])
def test_pick_respects_per_target_and_pool_limits(candidates, busy, per_target, limit, expected):
    assert pick(candidates, busy, per_target, limit) == expected


@pytest.mark.parametrize(("channel", "target", "key"), [
    ("webhook", "https://Hooks.Example.com/a?x=1", "webhook:https://hooks.example.com"),
    ("webhook", "https://hooks.example.com/b", "webhook:https://hooks.example.com"),
    ("webhook", "http://10.0.0.1:8080/x", "webhook:http://10.0.0.1:8080"),
    ("webhook", "not a url", "webhook:not a url"),
    ("email", "a@example.com", "email"),
    ("email", "b@other.example", "email"),  # every message goes through the one SMTP relay
    ("log", "ops", "log"),
])
def test_target_key_is_the_failure_domain(channel, target, key):
    assert target_key(channel, target) == key
    assert Subscription("s", channel, target).target_key == key


def test_decode_reads_the_documented_body():
    doc = change("pm-7", severity="critical", change_kind="resolved")
    decoded = events.decode(json.dumps(doc).encode(), "ignored-when-body-has-one", "critical.threshold.x")
    assert (decoded.change_id, decoded.change, decoded.event.severity) == (doc["change_id"], "resolved", "critical")
    assert decoded.event.device_id == "pm-7" and decoded.payload == doc
    assert decoded.occurred_at is not None and decoded.occurred_at.tzinfo is not None


def test_decode_takes_the_change_id_from_the_message_id_when_absent():
    doc = change("pm-7")
    del doc["change_id"]
    message_id = str(uuid.uuid4())
    assert events.decode(json.dumps(doc).encode(), message_id).change_id == message_id


@pytest.mark.parametrize("body", [
    b"not json", b"\xff\xfe", b"[]", b'{"change": "opened"}',
    json.dumps({**change("d"), "change_id": "nope"}).encode(),
    json.dumps({**change("d"), "change": ""}).encode(),
    json.dumps(change("d", severity="fatal")).encode(),
    json.dumps({**change("d"), "occurred_at": "yesterday"}).encode(),
])
def test_decode_rejects_unusable_bodies(body):
    with pytest.raises(events.InvalidChange):
        events.decode(body, None)


def test_signature_is_hmac_sha256_of_the_exact_body():
    body = webhook.encode({"b": 1, "a": [1.5, "é"]})
    assert body == '{"a":[1.5,"é"],"b":1}'.encode()
    expected = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert webhook.sign("k3y", body) == f"sha256={expected}"


@pytest.mark.parametrize(("code", "retryable"), [(500, True), (503, True), (429, True), (408, True),
                                                  (400, False), (404, False), (410, False), (301, False)])
def test_webhook_retryable_status_codes(code, retryable):
    assert webhook.is_retryable(code) is retryable


def test_render_names_severity_rule_device_and_message():
    assert render.subject(EVENT) == "[IoT Hub] WARNING opened: Voltage high on pm-1"
    assert "voltage_dc on pm-1 is 1612 V" in render.text(EVENT)


def test_settings_defaults_and_validation():
    loaded = settings.load(Env({"IOTHUB_ENV": "development"}))
    assert (loaded.metrics_port, loaded.smtp_host, loaded.max_attempts) == (9130, None, 5)
    assert loaded.lease_seconds > 2 * loaded.webhook_timeout
    for bad in ({"SMTP_TLS": "maybe"}, {"SMTP_USERNAME": "u"}, {"NOTIFY_WORKERS": "0"},
                {"NOTIFY_BACKOFF_BASE": "10", "NOTIFY_BACKOFF_CAP": "1"},
                {"WEBHOOK_TIMEOUT": "30", "NOTIFY_LEASE_SECONDS": "40"}):
        with pytest.raises(SettingsError):
            settings.load(Env({"IOTHUB_ENV": "development", **bad}))
