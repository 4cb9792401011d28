"""Property-based fuzzing of the envelope parser: nothing but InvalidMessage ever escapes it."""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iothub.contract import InvalidMessage, parse
from iothub.contract.envelope import Envelope

FUZZ = settings(max_examples=400, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TS = "2026-11-22T10:00:00Z"
GOOD = {"v": 2, "device_id": "dev-1", "ts": TS, "seq": 7, "msg_type": "telemetry",
        "measurements": [{"ts": TS, "type": "voltage_dc", "val": 750.5, "unit": "V"}]}

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)), max_leaves=30)


def _parse_or_reject(raw: bytes) -> Envelope | None:
    try:
        return parse(raw)
    except InvalidMessage as exc:
        assert exc.reason.value and exc.detail is not None
        return None


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise_past_validation(raw):
    _parse_or_reject(raw)


@FUZZ
@given(json_values)
def test_arbitrary_json_never_raises_past_validation(value):
    _parse_or_reject(json.dumps(value).encode())


@FUZZ
@given(st.sampled_from(sorted(GOOD)), json_values)
def test_mutating_one_field_is_accepted_only_when_still_valid(field, value):
    body = {**GOOD, field: value}
    env = _parse_or_reject(json.dumps(body).encode())
    if env is not None:  # whatever got through must still honour the contract
        assert env.device_id == body["device_id"] and 0 <= env.seq < 2**32
        assert all(isinstance(m["val"], int | float) for m in env.body["measurements"])


@FUZZ
@given(st.integers(min_value=0, max_value=60))
def test_deep_nesting_is_rejected_cleanly(depth):
    raw = b'{"v":2,"device_id":"d","ts":"' + TS.encode() + b'","seq":1,"msg_type":"telemetry","measurements":' \
        + b"[" * depth + b"]" * depth + b"}"
    _parse_or_reject(raw)


@FUZZ
@given(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"]))
def test_non_finite_numbers_are_rejected_as_such(token):
    raw = orjson.dumps(GOOD).replace(b"750.5", token)
    try:
        parse(raw)
    except InvalidMessage as exc:
        assert exc.reason.value == "non_finite"
    else:
        raise AssertionError(f"{token!r} was accepted")
