"""Protocol v2 envelope: parse and validate device messages (docs/protocol.md)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from iothub.contract.errors import InvalidMessage, Reason

PROTOCOL_VERSION = 2
SEQ_MODULUS = 2**32
MAX_MEASUREMENTS = 200
DEFAULT_MAX_BYTES = 64 * 1024
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?\Z")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")

MSG_TYPES = ("telemetry", "hello", "command_ack", "ota_status", "status")
ACK_RESULTS = ("accepted", "rejected", "error", "unsupported")
OTA_STATES = ("downloading", "verifying", "applying", "success", "failed")
STATUSES = ("online", "offline")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A validated device message; `body` is the parsed JSON object as the device sent it."""

    device_id: str
    msg_type: str
    ts: datetime
    seq: int  # -1 for protocol v1 and for status messages
    version: int
    body: dict[str, Any]

    @property
    def is_sequenced(self) -> bool:
        """Whether this message takes part in sequence tracking."""
        return self.seq >= 0


def _reject_constant(name: str) -> Any:
    raise InvalidMessage(Reason.NON_FINITE, f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidMessage(Reason.NON_FINITE, f"{text[:20]} overflows a double")
    return value


def load_json(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Decode JSON bytes strictly: size bound, UTF-8, no NaN/Infinity."""
    if len(raw) > max_bytes:
        raise InvalidMessage(Reason.TOO_LARGE, f"payload is {len(raw)} bytes, limit {max_bytes}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson rejects NaN/Infinity like any other syntax error; tell them apart for the reason.
        try:
            json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
        except InvalidMessage:
            raise
        except (ValueError, UnicodeDecodeError, RecursionError):  # too deep for json too: still malformed
            pass
        raise InvalidMessage(Reason.MALFORMED_JSON, str(exc)) from None


def parse_ts(value: Any, field: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries a UTC offset."""
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidMessage(Reason.BAD_TIMESTAMP, f"{field} must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidMessage(Reason.BAD_TIMESTAMP, f"{field} is not ISO 8601: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise InvalidMessage(Reason.BAD_TIMESTAMP, f"{field} has no UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise InvalidMessage(Reason.BAD_TIMESTAMP, f"{field} is out of range in UTC: {value[:40]!r}") from None


def _require(body: dict, field: str, kind: type | tuple[type, ...]) -> Any:
    if field not in body:
        raise InvalidMessage(Reason.MISSING_FIELD, f"{field} is required")
    value = body[field]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise InvalidMessage(Reason.WRONG_TYPE, f"{field} must be {_name(kind)}")
    if not isinstance(value, kind):
        raise InvalidMessage(Reason.WRONG_TYPE, f"{field} must be {_name(kind)}")
    return value


def _name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({int: "an integer", float: "a number", str: "a string", list: "an array",
                        dict: "an object", bool: "a boolean"}.get(k, k.__name__) for k in kinds)


def _number(body: dict, field: str, *, required: bool = True) -> float | None:
    if not required and field not in body:
        return None
    value = _require(body, field, (int, float))
    if not math.isfinite(value):
        raise InvalidMessage(Reason.NON_FINITE, f"{field} must be finite")
    return float(value)


def _enum(body: dict, field: str, allowed: tuple[str, ...]) -> str:
    value = _require(body, field, str)
    if value not in allowed:
        raise InvalidMessage(Reason.BAD_VALUE, f"{field} must be one of {', '.join(allowed)}")
    return value


def _check_measurements(body: dict) -> None:
    items = _require(body, "measurements", list)
    if not 1 <= len(items) <= MAX_MEASUREMENTS:
        reason = Reason.TOO_MANY_MEASUREMENTS if items else Reason.BAD_VALUE
        raise InvalidMessage(reason, f"measurements must hold 1 to {MAX_MEASUREMENTS} items, got {len(items)}")
    good_ts: set[str] = set()  # the samples of a datagram share a few timestamps: parse each once
    for i, item in enumerate(items):
        # Fast path for the well-formed item (the collector's hot loop); anything else gets the exact reason below.
        if type(item) is dict:
            ts, kind, val, unit = item.get("ts"), item.get("type"), item.get("val"), item.get("unit")
            if (type(kind) is str and 0 < len(kind) <= 64
                    and ((type(unit) is str and len(unit) <= 16) or "unit" not in item)
                    and type(val) in (int, float) and math.isfinite(val) and type(ts) is str
                    and (ts in good_ts or _good_ts(ts, good_ts))):
                continue
        _check_measurement(i, item)


def _good_ts(value: str, good: set[str]) -> bool:
    try:
        parse_ts(value, "ts")
    except InvalidMessage:
        return False
    good.add(value)
    return True


def _check_measurement(i: int, item: Any) -> None:
    if not isinstance(item, dict):
        raise InvalidMessage(Reason.WRONG_TYPE, f"measurements[{i}] must be an object")
    try:
        parse_ts(item.get("ts"), "ts")
        kind = _require(item, "type", str)
        _number(item, "val")
        unit = _require(item, "unit", str) if "unit" in item else ""  # absent: dimensionless (spec v2, pf)
    except InvalidMessage as exc:
        raise InvalidMessage(exc.reason, f"measurements[{i}].{exc.detail}") from None
    if not kind or len(kind) > 64 or len(unit) > 16:
        raise InvalidMessage(Reason.BAD_VALUE, f"measurements[{i}] type/unit length out of bounds")


def _check_hello(body: dict) -> None:
    fw = _require(body, "fw_version", str)
    if not SEMVER_RE.match(fw):
        raise InvalidMessage(Reason.BAD_VALUE, "fw_version must be semver")
    for field in ("uptime_s", "broker_connections"):
        if _require(body, field, int) < 0:
            raise InvalidMessage(Reason.BAD_VALUE, f"{field} must be >= 0")
    buf = _number(body, "buf_usage_pct")
    if not 0 <= buf <= 100:
        raise InvalidMessage(Reason.BAD_VALUE, "buf_usage_pct must be within 0..100")
    _number(body, "temp_internal", required=False)


def _check_cmd_id(body: dict) -> None:
    if not UUID_RE.match(_require(body, "cmd_id", str)):
        raise InvalidMessage(Reason.BAD_VALUE, "cmd_id must be a UUID")


def _check_command_ack(body: dict) -> None:
    _check_cmd_id(body)
    _enum(body, "result", ACK_RESULTS)
    if "detail" in body and not isinstance(body["detail"], str):
        raise InvalidMessage(Reason.WRONG_TYPE, "detail must be a string")


def _check_ota_status(body: dict) -> None:
    _check_cmd_id(body)
    _enum(body, "ota_state", OTA_STATES)
    pct = _number(body, "progress_pct")
    if not 0 <= pct <= 100:
        raise InvalidMessage(Reason.BAD_VALUE, "progress_pct must be within 0..100")
    _require(body, "fw_version_target", str)
    if "detail" in body and not isinstance(body["detail"], str):
        raise InvalidMessage(Reason.WRONG_TYPE, "detail must be a string")


CHECKS = {
    "telemetry": _check_measurements,
    "hello": _check_hello,
    "command_ack": _check_command_ack,
    "ota_status": _check_ota_status,
}


def validate(body: Any, *, expected_type: str | None = None, topic_device_id: str | None = None) -> Envelope:
    """Validate a decoded message; `expected_type` comes from the MQTT topic when there is one."""
    if not isinstance(body, dict):
        raise InvalidMessage(Reason.WRONG_TYPE, "message must be a JSON object")
    device_id = _require(body, "device_id", str)
    if not DEVICE_ID_RE.match(device_id):
        raise InvalidMessage(Reason.BAD_VALUE, "device_id must match [A-Za-z0-9_-]{1,64}")
    if topic_device_id is not None and device_id != topic_device_id:
        raise InvalidMessage(Reason.DEVICE_MISMATCH, f"topic names {topic_device_id}, body names {device_id}")
    ts = parse_ts(body.get("ts"), "ts") if "ts" in body else None
    if ts is None:
        raise InvalidMessage(Reason.MISSING_FIELD, "ts is required")
    if expected_type == "status" or (expected_type is None and "status" in body and "msg_type" not in body):
        _enum(body, "status", STATUSES)
        return Envelope(device_id, "status", ts, -1, int(body.get("v", PROTOCOL_VERSION)), body)
    if "seq" not in body and "msg_type" not in body and "v" not in body:
        return _validate_v1(body, device_id, ts, expected_type)
    version = _require(body, "v", int)
    if version != PROTOCOL_VERSION:
        raise InvalidMessage(Reason.UNSUPPORTED_VERSION, f"v must be {PROTOCOL_VERSION}, got {version}")
    msg_type = _enum(body, "msg_type", tuple(CHECKS))
    if expected_type is not None and msg_type != expected_type:
        raise InvalidMessage(Reason.TOPIC_MISMATCH, f"msg_type {msg_type} sent on a {expected_type} topic")
    seq = _require(body, "seq", int)
    if not 0 <= seq < SEQ_MODULUS:
        raise InvalidMessage(Reason.BAD_VALUE, "seq must be a uint32")
    CHECKS[msg_type](body)
    if msg_type == "hello":
        _check_boot_time(ts, body["uptime_s"])
    return Envelope(device_id, msg_type, ts, seq, version, body)


def _check_boot_time(ts: datetime, uptime_s: int) -> None:
    # Sequence tracking computes the boot time ts - uptime_s; one before year 1 cannot be represented.
    try:
        ts - timedelta(seconds=uptime_s)
    except OverflowError:
        raise InvalidMessage(Reason.BAD_VALUE, "uptime_s reaches back before year 1") from None


def _validate_v1(body: dict, device_id: str, ts: datetime, expected_type: str | None) -> Envelope:
    msg_type = expected_type or "telemetry"
    if msg_type not in CHECKS:
        raise InvalidMessage(Reason.UNSUPPORTED_VERSION, f"protocol v1 has no {msg_type} messages")
    CHECKS[msg_type](body)
    return Envelope(device_id, msg_type, ts, -1, 1, body)


def parse(raw: bytes, *, expected_type: str | None = None, topic_device_id: str | None = None,
          max_bytes: int = DEFAULT_MAX_BYTES) -> Envelope:
    """Decode and validate raw bytes into an Envelope, or raise InvalidMessage."""
    return validate(load_json(raw, max_bytes), expected_type=expected_type, topic_device_id=topic_device_id)
