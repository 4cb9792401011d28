"""The message the collector publishes to RabbitMQ for every accepted device message."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from iothub.contract.envelope import Envelope

# Fixed namespace so a (device_id, epoch, seq) always maps to the same msg_id on any collector.
MSG_NAMESPACE = uuid.UUID("5b1d6c8e-4f0e-4c57-9a4e-7f3f0f1d2c11")
CONTENT_TYPE = "application/json"


def message_id(device_id: str, epoch: int, seq: int) -> str:
    """Deterministic id of a sequenced message; v1/status messages get a random one."""
    if seq < 0:
        return str(uuid.uuid4())
    return str(uuid.uuid5(MSG_NAMESPACE, f"{device_id}/{epoch}/{seq}"))


@dataclass(frozen=True, slots=True)
class IngestMessage:
    """Accepted device message plus what the collector learnt about it."""

    msg_id: str
    device_id: str
    device_type: str
    msg_type: str
    ts: str
    seq: int
    epoch: int
    received_at: str
    source: str  # "mqtt" | "http"
    body: dict[str, Any]
    # Values the collector computed from the body (power, spec "Backend-computed values"), shaped like measurements
    # ({ts, type, val, unit}); kept apart from `body` so the raw archive stays exactly what the device sent.
    derived: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_envelope(cls, env: Envelope, *, device_type: str, epoch: int, source: str,
                      received_at: datetime | None = None, derived: tuple[dict[str, Any], ...] = ()
                      ) -> IngestMessage:
        """Wrap a validated envelope with its id, epoch and receipt time."""
        now = (received_at or datetime.now(UTC)).isoformat()
        return cls(message_id(env.device_id, epoch, env.seq), env.device_id, device_type, env.msg_type,
                   env.ts.isoformat(), env.seq, epoch, now, source, env.body, derived)

    def encode(self) -> bytes:
        """Serialise for the broker; `derived` only when there is any, so consumers that predate it see no change."""
        d = {"msg_id": self.msg_id, "device_id": self.device_id, "device_type": self.device_type,
             "msg_type": self.msg_type, "ts": self.ts, "seq": self.seq, "epoch": self.epoch,
             "received_at": self.received_at, "source": self.source, "body": self.body}
        if self.derived:
            d["derived"] = self.derived
        return orjson.dumps(d)

    @property
    def readings(self) -> list[dict[str, Any]]:
        """Measured and derived values together, as consumers of series (stores, rules, exports) want them."""
        measured = self.body.get("measurements")
        measured = measured if isinstance(measured, list) else []
        return [*measured, *self.derived] if self.derived else measured

    @classmethod
    def decode(cls, raw: bytes) -> IngestMessage:
        """Parse a broker message; raises ValueError/KeyError/TypeError on a foreign payload."""
        d = orjson.loads(raw)
        return cls(str(d["msg_id"]), d["device_id"], d["device_type"], d["msg_type"], d["ts"], int(d["seq"]),
                   int(d["epoch"]), d["received_at"], d["source"], dict(d["body"]),
                   tuple(dict(m) for m in d.get("derived") or ()))


@dataclass(frozen=True, slots=True)
class BridgedMessage:
    """A validated message of a registered device as a bridge hands it to its ingest partition, not yet sequenced.

    `redelivered`: the MQTT broker sent it again (DUP), so it is no sign of life. `registration` is the device
    row's id: a new one (a replacement unit under the same device_id) starts a fresh sequence history.
    """

    device_id: str
    device_type: str
    registration: str | None
    msg_type: str
    ts: str
    seq: int
    source: str
    received_at: str
    redelivered: bool
    body: dict[str, Any]

    @classmethod
    def from_envelope(cls, env: Envelope, *, device_type: str, registration: str | None, source: str,
                      redelivered: bool = False) -> BridgedMessage:
        """Wrap a validated envelope with what the bridge learnt about it."""
        return cls(env.device_id, device_type, registration, env.msg_type, env.ts.isoformat(), env.seq, source,
                   datetime.now(UTC).isoformat(), redelivered, env.body)

    def encode(self) -> bytes:
        """Serialise for the broker."""
        return orjson.dumps({
            "device_id": self.device_id, "device_type": self.device_type, "registration": self.registration,
            "msg_type": self.msg_type, "ts": self.ts, "seq": self.seq, "source": self.source,
            "received_at": self.received_at, "redelivered": self.redelivered, "body": self.body,
        })

    @classmethod
    def decode(cls, raw: bytes) -> BridgedMessage:
        """Parse a broker message; raises ValueError/KeyError/TypeError on a foreign payload."""
        d = orjson.loads(raw)
        return cls(str(d["device_id"]), str(d["device_type"]), d["registration"], str(d["msg_type"]), str(d["ts"]),
                   int(d["seq"]), str(d["source"]), str(d["received_at"]), bool(d["redelivered"]), dict(d["body"]))

    def accepted(self, epoch: int, derived: tuple[dict[str, Any], ...] = ()) -> IngestMessage:
        """The sequenced message the writers and the rule engine receive (with the values derived from it)."""
        return IngestMessage(message_id(self.device_id, epoch, self.seq), self.device_id, self.device_type,
                             self.msg_type, self.ts, self.seq, epoch, self.received_at, self.source, self.body,
                             derived)


@dataclass(frozen=True, slots=True)
class GapNotice:
    """Published by the collector when a device's sequence jumps forward."""

    device_id: str
    device_type: str
    epoch: int
    expected_seq: int
    received_seq: int
    missing: int
    ts: str

    def encode(self) -> bytes:
        """Serialise for the broker."""
        return orjson.dumps({"kind": "gap", "device_id": self.device_id, "device_type": self.device_type,
                             "epoch": self.epoch, "expected_seq": self.expected_seq,
                             "received_seq": self.received_seq, "missing": self.missing, "ts": self.ts})

    @classmethod
    def decode(cls, raw: bytes) -> GapNotice:
        """Parse a gap notice."""
        d = orjson.loads(raw)
        return cls(d["device_id"], d["device_type"], int(d["epoch"]), int(d["expected_seq"]),
                   int(d["received_seq"]), int(d["missing"]), d["ts"])


@dataclass(frozen=True, slots=True)
class SeenNotice:
    """Published by the collector when a device was heard but nothing of it was published: a duplicate or a
    dead-lettered message. Any message is a sign of life (spec REQ-ONLINE-001)."""

    device_id: str
    device_type: str
    why: str  # "duplicate" | "rejected"
    received_at: str

    def encode(self) -> bytes:
        """Serialise for the broker."""
        return orjson.dumps({"kind": "seen", "device_id": self.device_id, "device_type": self.device_type,
                             "why": self.why, "received_at": self.received_at})

    @classmethod
    def decode(cls, raw: bytes) -> SeenNotice:
        """Parse a seen notice; raises ValueError/KeyError/TypeError on a foreign payload."""
        d = orjson.loads(raw)
        if d.get("kind") != "seen":
            raise ValueError("not a seen notice")
        return cls(str(d["device_id"]), str(d["device_type"]), str(d["why"]), str(d["received_at"]))
