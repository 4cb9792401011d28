"""Builders shared by the rule engine tests."""

from __future__ import annotations

from datetime import UTC, datetime

from iothub.contract.ingest import GapNotice, IngestMessage, message_id
from rule_engine.changes import Changes
from rule_engine.evaluator import Evaluator
from rule_engine.model import Input, Rule, RuleIndex

T0 = 1_800_000_000.0  # a fixed device-clock origin


def iso(ts: float) -> str:
    """Epoch seconds as ISO."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


def rule(**kw) -> Rule:
    """A threshold rule on temperature > 50 unless overridden."""
    base = {"id": "r1", "name": "hot", "metric": "temperature", "operator": "gt", "threshold": 50.0}
    return Rule(**(base | kw))


def reading(device: str, seq: int, ts: float, value: float, metric: str = "temperature", *, epoch: int = 1,
            device_type: str = "t1", received_at: float | None = None) -> Input:
    """A telemetry input with one measurement."""
    body = {"measurements": [{"ts": iso(ts), "type": metric, "val": value, "unit": "Cel"}]}
    return Input("msg", device, device_type, epoch, seq, ts, received_at if received_at is not None else ts,
                 "telemetry", f"{device}/{seq}", body)


def message(device: str, seq: int, ts: float, msg_type: str, body: dict, *, device_type: str = "t1",
            received_at: float | None = None) -> Input:
    """A non-telemetry input."""
    return Input("msg", device, device_type, 1, seq, ts, received_at if received_at is not None else ts, msg_type,
                 f"{device}/{seq}", body)


def gap(device: str, received_seq: int, missing: int, ts: float, *, epoch: int = 1) -> Input:
    """A gap notice input."""
    return Input("gap", device, "t1", epoch, received_seq, ts, ts,
                 body={"expected_seq": received_seq - missing, "received_seq": received_seq, "missing": missing})


def run(ev: Evaluator, inputs: list[Input], now: float = T0) -> Changes:
    """Evaluate one batch and commit it, as the service does after a successful store."""
    ch = ev.begin(now)
    for inp in inputs:
        ev.process(ch, inp)
    ev.commit(ch)
    return ch


def engine(*rules: Rule, intervals: dict | None = None) -> Evaluator:
    """An evaluator over these rules."""
    return Evaluator(RuleIndex(list(rules), intervals))


def changes_of(ch: Changes) -> list[str]:
    """The published change kinds of a batch, in order."""
    return [o.payload["change"] for o in ch.outbox]


def ingest(device: str, device_type: str, seq: int, ts: float, measurements: list[tuple[str, float, str]], *,
           epoch: int = 1, received_at: float | None = None) -> IngestMessage:
    """A telemetry IngestMessage as the collector publishes it."""
    body = {"measurements": [{"ts": iso(ts), "type": t, "val": v, "unit": u} for t, v, u in measurements]}
    return IngestMessage(message_id(device, epoch, seq), device, device_type, "telemetry", iso(ts), seq, epoch,
                         iso(received_at if received_at is not None else datetime.now(UTC).timestamp()), "mqtt",
                         body)


def ingest_other(device: str, device_type: str, seq: int, msg_type: str, body: dict, *, epoch: int = 1,
                 ts: float | None = None) -> IngestMessage:
    """A non-telemetry IngestMessage (ota_status, status, hello...)."""
    now = datetime.now(UTC).timestamp()
    return IngestMessage(message_id(device, epoch, seq), device, device_type, msg_type, iso(ts or now), seq, epoch,
                         iso(now), "mqtt", body)


def gap_notice(device: str, device_type: str, received_seq: int, missing: int, *, epoch: int = 1) -> GapNotice:
    """A collector gap notice."""
    return GapNotice(device, device_type, epoch, received_seq - missing, received_seq, missing,
                     datetime.now(UTC).isoformat())
