"""Fuzzing the collector's ingest edge (HTTP app and the handler MQTT uses) on the run's real RabbitMQ and PostgreSQL:
never a 5xx or an exception past validation; every rejection has the standard error body, a reason, one dead letter
with that reason and one count in iothub_collector_messages_rejected_total{source, reason}."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import threading
import uuid

import orjson
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import metrics
from collector.edge.api import HttpIngest, create_app
from collector.edge.directory import DeviceDirectory
from collector.edge.repository import PostgresDevices
from collector.edge.service import ACCEPTED, REJECTED, Ingest, Outcome
from iothub import topology
from iothub.contract import Reason
from iothub.errors import Unavailable
from iothub.rabbit import ConfirmPublisher
from tests.collector.conftest import Tap, now_iso, sample
from tests.support.poll import wait_for

PATH = "/api/v1/telemetry"
MAX_BYTES = 8 * 1024
REJECTED_METRIC = "iothub_collector_messages_rejected_total"
REASONS = {r.value for r in Reason}
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TOKEN = "device-secret-token"


class Kit:
    """An edge Ingest wired like the collector's (ConfirmPublisher, directory, Prometheus observer), its
    HTTP app, and a tap on the dead-letter exchange."""

    def __init__(self, db, amqp_url, run_id):
        self.device_type = f"fuzz-{run_id}"
        self.device = f"fuzz-{uuid.uuid4().hex[:10]}"
        self.token_device = self.device + "-tok"
        with db.transaction() as cur:
            cur.execute("INSERT INTO device_types (name) VALUES (%s)", (self.device_type,))
            for device_id, token in ((self.device, None), (self.token_device, TOKEN)):
                cur.execute("""INSERT INTO devices (device_id, name, device_type_id, ingest_token_hash)
                               SELECT %s, %s, id, %s FROM device_types WHERE name = %s""",
                            (device_id, device_id, hashlib.sha256(TOKEN.encode()).hexdigest() if token else None,
                             self.device_type))
        self.publisher = ConfirmPublisher(amqp_url, name="security-fuzz", partitions=2).start(15)
        self.directory = DeviceDirectory(PostgresDevices(db), ttl=600).start()
        self.ingest = Ingest(self.publisher, self.directory, metrics.EdgeObserver(), max_bytes=MAX_BYTES,
                             partitions=2)
        self.app = create_app(self.ingest, max_bytes=MAX_BYTES, require_token=False)
        self.client = self.app.test_client()
        self.dead = Tap(amqp_url, topology.DEAD_LETTER_EXCHANGE, [""])
        self.seq = itertools.count(1)

    def close(self):
        self.dead.close()
        self.directory.stop()
        self.publisher.stop()


@pytest.fixture(scope="module")
def kit(db, amqp_url, run_id):
    k = Kit(db, amqp_url, run_id)
    yield k
    k.close()


# --- valid envelopes and what to mutate them with ------------------------------------------------------------------

def valid(kind: str, device_id: str, seq: int) -> dict:
    """A valid protocol v2 envelope of each sequenced type."""
    ts = now_iso()
    head = {"v": 2, "device_id": device_id, "msg_type": kind, "seq": seq, "ts": ts}
    cmd = str(uuid.uuid4())
    return {
        "telemetry": {**head, "measurements": [{"ts": ts, "type": "temperature", "val": 21.5, "unit": "C"}]},
        "hello": {**head, "fw_version": "1.4.2", "uptime_s": 3600, "broker_connections": 1, "buf_usage_pct": 0.0},
        "command_ack": {**head, "cmd_id": cmd, "result": "accepted"},
        "ota_status": {**head, "cmd_id": cmd, "ota_state": "downloading", "progress_pct": 35,
                       "fw_version_target": "1.5.0"},
        "status": {"device_id": device_id, "ts": ts, "status": "online"},  # the retained Last Will message
    }[kind]


KINDS = ("telemetry", "hello", "command_ack", "ota_status", "status")
DELETE = object()
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.sampled_from([2**32, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30, 10**400, -1, 0]),
    st.floats(),  # NaN and +-Infinity included: json.dumps writes them as bare tokens
    st.sampled_from([1e308, -1e308, 5e-324, 1.7976931348623157e308]),
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "\ud800", "x" * 500, "1.2.3", "2026-03-01T10:00:00", "0001-01-01T00:00:00+01:00",
                     "9999-12-31T23:59:59-01:00", "2026-02-30T10:00:00Z", "' OR 1=1--", "../../etc/passwd",
                     "dev\n", "telemetry", "hello", "status", "online", str(uuid.uuid4())]),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=20)


def field_paths(body: dict) -> list[tuple]:
    """Every top-level key, every key of the first measurement, plus a new key."""
    paths = [(k,) for k in body] + [("extra_field",)]
    if "measurements" in body:
        paths += [("measurements", 0, k) for k in body["measurements"][0]]
    return paths


def mutate(body: dict, path: tuple, value) -> dict:
    """A copy of body with the field at path replaced (or removed for DELETE)."""
    out = copy.deepcopy(body)
    target = out
    for part in path[:-1]:
        target = target[part]
    if value is DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return out


def dumps(value) -> bytes:
    """JSON bytes, with NaN/Infinity tokens and lone surrogates left as a fuzzer would send them."""
    return json.dumps(value, allow_nan=True).encode()


# --- the checks ---------------------------------------------------------------------------------------------------

def rejected_counts(source: str) -> dict[str, float]:
    """reason -> iothub_collector_messages_rejected_total{source, reason}; one collect of that metric, because
    REGISTRY.get_sample_value collects every metric of the process on each call."""
    counts = dict.fromkeys(REASONS, 0.0)
    for metric in metrics.REJECTED_TOTAL.collect():
        for s in metric.samples:
            if s.name == REJECTED_METRIC and s.labels["source"] == source:
                counts[s.labels["reason"]] = s.value
    return counts


def assert_exported(source: str, reason: str, value: float) -> None:
    """The count is what the collector's /metrics exports under that name and those labels."""
    assert sample(REJECTED_METRIC, source=source, reason=reason) == value


def take_dead_letter(kit: Kit, body: bytes, reason: str, source: str) -> None:
    """Exactly one new dead letter: the given bytes with the reason and source headers."""
    def match():
        kit.dead.drain()
        return [(p, b) for p, b in kit.dead.received if b == body]

    found = wait_for(match, timeout=10, what=f"dead letter ({reason})")
    props, _ = found[0]
    assert props.headers[topology.DL_REASON] == reason
    assert props.headers[topology.DL_SOURCE] == source
    assert props.headers[topology.DL_DETAIL]
    kit.dead.received.remove(found[0])
    extra, kit.dead.received[:] = list(kit.dead.received), []
    assert extra == [], "a rejection was parked more than once, or something else was parked"


def assert_error_body(resp, status: int | None = None) -> dict:
    assert resp.is_json, resp.get_data()
    body = resp.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] and body["error"]["message"], body
    if status is not None:
        assert resp.status_code == status, body
    return body["error"]


def post(kit: Kit, raw: bytes, *, content_type: str = "application/json", headers=None, parked: bytes | None = None):
    """POST raw bytes and check the whole contract of the answer; returns the response."""
    before = rejected_counts("http")
    resp = kit.client.post(PATH, data=raw, content_type=content_type, headers=headers or {})
    assert resp.status_code < 500, resp.get_data()
    after = rejected_counts("http")
    moved = {r: after[r] - before[r] for r in REASONS if after[r] != before[r]}
    if resp.status_code == 202:
        assert resp.get_json()["status"] in ("accepted", "duplicate")
        assert moved == {}
        assert kit.dead.drain() == []
        return resp
    error = assert_error_body(resp)
    if resp.status_code == 415:  # not a device message at all: refused before ingest, neither parked nor counted
        assert moved == {} and kit.dead.drain() == []
        return resp
    reason = error["details"].get("reason")
    assert reason in REASONS, error
    assert resp.status_code == {"too_large": 413, "unauthorized": 401}.get(reason, 400), error
    if reason == "too_large" and len(raw) > MAX_BYTES:
        # Refused before reading: the answer does not wait for the dead-letter confirm, the count follows it.
        moved = wait_for(lambda: {r: n - before[r] for r, n in rejected_counts("http").items() if n != before[r]},
                         timeout=10, what="too_large counted")
    assert moved == {reason: 1}, moved
    assert_exported("http", reason, before[reason] + 1)
    if reason == "unauthorized":  # counted, not parked (docs/protocol.md)
        assert kit.dead.drain() == []
    else:
        if parked is None:  # a declared length over the limit is refused unread: an empty body is parked
            parked = b"" if len(raw) > MAX_BYTES else raw
        take_dead_letter(kit, parked, reason, "http")
    return resp


# --- properties ---------------------------------------------------------------------------------------------------

@FUZZ
@given(st.sampled_from(KINDS), st.data(), st.one_of(st.just(DELETE), json_values))
def test_mutating_one_field_of_a_valid_envelope(kit, kind, data, value):
    body = valid(kind, kit.device, next(kit.seq))
    path = data.draw(st.sampled_from(field_paths(body)))
    post(kit, dumps(mutate(body, path, value)))


@FUZZ
@given(json_values)
def test_arbitrary_json_documents(kit, value):
    post(kit, dumps(value))


@FUZZ
@given(st.sampled_from(KINDS), st.data())
def test_byte_level_mutations_of_valid_envelopes(kit, kind, data):
    raw = bytearray(orjson.dumps(valid(kind, kit.device, next(kit.seq))))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "non_utf8"]))
        at = data.draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[at:]
        elif op == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            raw[at:at] = data.draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
        if not raw:
            raw = bytearray(b"{")
    post(kit, bytes(raw))


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes(kit, raw):
    post(kit, raw)


@FUZZ
@given(st.sampled_from(["text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data",
                        "application/octet-stream", "application/jsonx", "text/json", "", "application/*",
                        "APPLICATION/JSON", "application/json; charset=latin-1", "application/json;;;"]),
       st.sampled_from(KINDS))
def test_content_types(kit, content_type, kind):
    resp = post(kit, orjson.dumps(valid(kind, kit.device, next(kit.seq))), content_type=content_type)
    is_json = content_type.split(";")[0].strip().lower() == "application/json"
    assert (resp.status_code == 202) == is_json, (content_type, resp.status_code)


# --- hand-picked nasties ------------------------------------------------------------------------------------------

def _good(kit, kind="telemetry") -> dict:
    return valid(kind, kit.device, next(kit.seq))


NASTY = {
    "nan_token": lambda k: orjson.dumps(_good(k)).replace(b"21.5", b"NaN"),
    "infinity_token": lambda k: orjson.dumps(_good(k)).replace(b"21.5", b"Infinity"),
    "minus_infinity_token": lambda k: orjson.dumps(_good(k)).replace(b"21.5", b"-Infinity"),
    "double_overflow": lambda k: orjson.dumps(_good(k)).replace(b"21.5", b"1e400"),
    "huge_integer_seq": lambda k: dumps({**_good(k), "seq": 10**400}),
    "deep_nesting": lambda k: orjson.dumps({**_good(k), "extra": None}).replace(b"null", b"[" * 3000 + b"]" * 3000),
    "deep_nesting_object": lambda k: b'{"a":' * 1200 + b"1" + b"}" * 1200,
    "utf8_bom": lambda k: b"\xef\xbb\xbf" + orjson.dumps(_good(k)),
    "utf16": lambda k: json.dumps(_good(k)).encode("utf-16"),
    "latin1_device_id": lambda k: orjson.dumps(_good(k)).replace(k.device.encode(), "d\xe9v".encode("latin-1")),
    "lone_surrogate": lambda k: orjson.dumps(_good(k)).replace(b'"C"', b'"\\ud800"'),
    "nul_in_string": lambda k: orjson.dumps(_good(k)).replace(b'"C"', b'"\\u0000"'),
    "two_documents": lambda k: orjson.dumps(_good(k)) * 2,
    "empty_body": lambda k: b"",
    "whitespace_body": lambda k: b" \n\t ",
    "array_of_envelopes": lambda k: orjson.dumps([_good(k), _good(k)]),
    "duplicate_keys": lambda k: orjson.dumps(_good(k))[:-1] + b',"seq":"x"}',
    "timestamp_before_year_1": lambda k: orjson.dumps({**_good(k), "ts": "0001-01-01T00:00:00+01:00"}),
    "timestamp_after_year_9999": lambda k: orjson.dumps({**_good(k), "ts": "9999-12-31T23:59:59-01:00"}),
    "measurement_ts_overflow": lambda k: orjson.dumps(mutate(_good(k), ("measurements", 0, "ts"),
                                                             "0001-01-01T00:00:00+00:01")),
    "uptime_overflows_boot_time": lambda k: orjson.dumps({**_good(k, "hello"), "uptime_s": 2**64 - 1}),
    "uptime_before_year_1": lambda k: orjson.dumps({**_good(k, "hello"), "uptime_s": 10**11}),
    "many_measurements": lambda k: orjson.dumps({**_good(k), "measurements": _good(k)["measurements"] * 201}),
}


@pytest.mark.parametrize("case", sorted(NASTY))
def test_nasty_payloads(kit, case):
    post(kit, NASTY[case](kit))


def test_oversized_body_with_content_length_is_413_and_parked_empty(kit):
    raw = orjson.dumps({**_good(kit), "pad": "x" * MAX_BYTES})
    resp = post(kit, raw)
    assert resp.status_code == 413 and resp.get_json()["error"]["details"]["reason"] == "too_large"


def test_oversized_chunked_body_is_413_and_parked(kit, tls_files):
    """No Content-Length: the body is read up to the limit on the real HTTPS server, then refused."""
    server = HttpIngest(kit.app, 0, host="127.0.0.1", cert_file=tls_files.cert, key_file=tls_files.key).start()
    try:
        raw = orjson.dumps({**_good(kit), "pad": "x" * (4 * MAX_BYTES)})
        before = rejected_counts("http")["too_large"]
        resp = requests.post(f"https://127.0.0.1:{server.port}{PATH}", data=iter([raw[:100], raw[100:]]),
                             headers={"Content-Type": "application/json"}, timeout=15, verify=tls_files.ca)
        assert resp.status_code == 413, resp.text
        assert resp.json()["error"]["details"]["reason"] == "too_large"
        assert rejected_counts("http")["too_large"] - before == 1
        take_dead_letter(kit, raw[:MAX_BYTES + 1], "too_large", "http")
    finally:
        server.stop()


def test_device_token_failures_are_401_counted_and_not_parked(kit):
    secured = create_app(kit.ingest, max_bytes=MAX_BYTES, require_token=True).test_client()
    body = orjson.dumps(valid("telemetry", kit.token_device, next(kit.seq)))
    for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + TOKEN},
                   {"Authorization": "Bearer " + TOKEN + "\x00"}, {"Authorization": "Bearer " + "A" * 10_000}):
        saved = kit.client
        kit.client = secured
        try:
            resp = post(kit, body, headers=header)
        finally:
            kit.client = saved
        assert resp.status_code == 401
    kit.client, saved = secured, kit.client
    try:
        assert post(kit, body, headers={"Authorization": "Bearer " + TOKEN}).status_code == 202
    finally:
        kit.client = saved


def test_wrong_methods_and_paths_get_the_standard_error_body(kit):
    for method, path in (("GET", PATH), ("PUT", PATH), ("DELETE", PATH), ("POST", "/api/v1/telemetry/../x"),
                         ("POST", "/api/v1/%2e%2e/telemetry"), ("POST", "/")):
        resp = kit.client.open(path, method=method, data=b"{}", content_type="application/json")
        assert resp.status_code in (404, 405), (method, path, resp.status_code)
        assert_error_body(resp)


# --- the handler the MQTT bridge calls ----------------------------------------------------------------------------

def handle(kit: Kit, raw: bytes, *, topic_device_id: str, expected_type: str) -> Outcome:
    """Ingest.handle as MqttBridge._on_message calls it; checks done runs once and rejections are parked."""
    outcomes: list[Outcome] = []
    finished = threading.Event()

    def done(outcome: Outcome) -> None:
        outcomes.append(outcome)
        finished.set()

    before = rejected_counts("mqtt")
    topic = f"iot/{topic_device_id}/{expected_type}"
    try:
        kit.ingest.handle(raw, source="mqtt", done=done, topic_device_id=topic_device_id,
                          expected_type=expected_type, routing_key=topic)
    except Unavailable:  # the only exception the bridge expects (it withholds the ack and retries)
        pytest.fail("database reported unavailable during fuzzing")
    assert finished.wait(10), "done was never called"
    outcome = outcomes[0]
    after = rejected_counts("mqtt")
    moved = {r: after[r] - before[r] for r in REASONS if after[r] != before[r]}
    assert outcome.kind in (ACCEPTED, REJECTED), outcome
    if outcome.kind == REJECTED:
        assert outcome.reason is not None and outcome.detail, outcome
        assert moved == {outcome.reason.value: 1}
        assert_exported("mqtt", outcome.reason.value, before[outcome.reason.value] + 1)
        take_dead_letter(kit, raw, outcome.reason.value, "mqtt")
    else:
        assert moved == {}
    assert len(outcomes) == 1, outcomes
    return outcome


TOPIC_TYPES = {"telemetry": "telemetry", "hello": "hello", "command_ack": "command/ack", "ota_status": "ota/status"}


@FUZZ
@given(st.sampled_from(KINDS), st.data(), st.one_of(st.just(DELETE), json_values),
       st.sampled_from(["telemetry", "hello", "command_ack", "ota_status", "status"]))
def test_mqtt_handler_with_mutated_envelopes(kit, kind, data, value, topic_type):
    body = valid(kind, kit.device, next(kit.seq))
    path = data.draw(st.sampled_from(field_paths(body)))
    handle(kit, dumps(mutate(body, path, value)), topic_device_id=kit.device, expected_type=topic_type)


@pytest.mark.parametrize("case", sorted(NASTY))
def test_mqtt_handler_with_nasty_payloads(kit, case):
    raw = NASTY[case](kit)
    handle(kit, raw, topic_device_id=kit.device, expected_type="hello" if b'"hello"' in raw else "telemetry")
