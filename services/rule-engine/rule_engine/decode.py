"""Turn broker bodies (IngestMessage, GapNotice or SeenNotice JSON) into evaluator inputs."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from iothub.errors import Rejected
from rule_engine.model import Input, parse_time


def decode(body: bytes) -> Input:
    """Decode one body; raises Rejected when it can never be evaluated."""
    try:
        d = orjson.loads(body)
        if not isinstance(d, dict):
            raise TypeError("body is not a JSON object")
        if d.get("kind") == "gap":
            return Input("gap", d["device_id"], d["device_type"], int(d["epoch"]), int(d["received_seq"]),
                         parse_time(d["ts"]), parse_time(d["ts"]),
                         body={k: int(d[k]) for k in ("expected_seq", "received_seq", "missing")})
        if d.get("kind") == "seen":  # heard, nothing published (a duplicate or a dead letter): still alive
            at = parse_time(d["received_at"])
            return Input("seen", d["device_id"], d["device_type"], -1, -1, at, at, body={"why": str(d["why"])})
        payload = d["body"]
        if not isinstance(payload, dict):
            raise TypeError("body.body is not an object")
        if d["msg_type"] == "telemetry":
            if d.get("derived"):  # metering (issue 13): derived power is evaluated like measured values
                payload = {**payload, "measurements": [*payload.get("measurements", ()), *d["derived"]]}
            _check_measurements(payload.get("measurements"))
        return Input("msg", d["device_id"], d["device_type"], int(d["epoch"]), int(d["seq"]), parse_time(d["ts"]),
                     parse_time(d["received_at"]), d["msg_type"], str(d["msg_id"]), payload)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Rejected("undecodable", f"{type(exc).__name__}: {exc}"[:500]) from None


def _check_measurements(items) -> None:
    if not isinstance(items, list):
        raise TypeError("measurements is not a list")
    for m in items:
        if not (isinstance(m, dict) and isinstance(m.get("type"), str) and isinstance(m.get("ts"), str)
                and isinstance(m.get("val"), int | float) and not isinstance(m.get("val"), bool)):
            raise TypeError(f"malformed measurement {str(m)[:100]}")


def decode_batch(bodies: Sequence[bytes]) -> tuple[list[Input], dict[int, Rejected]]:
    """Decode a batch sorted for evaluation: by (device_id, epoch, seq); undecodable ones by index."""
    inputs: list[tuple[int, Input]] = []
    failures: dict[int, Rejected] = {}
    for index, body in enumerate(bodies):
        try:
            inputs.append((index, decode(body)))
        except Rejected as exc:
            failures[index] = exc
    inputs.sort(key=lambda item: (item[1].device_id, item[1].epoch, item[1].seq, item[0]))
    return [inp for _, inp in inputs], failures
