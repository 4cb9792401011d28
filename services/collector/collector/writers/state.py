"""Device-state writer: collapses a batch to the newest state per device, command and OTA job."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from collector.writers import metrics
from collector.writers.decode import Decoded, DeliveryLike, decode_batch, parse_time
from iothub.contract import SeenNotice
from iothub.errors import Rejected

WRITER = "state"
ACK_RESULTS = ("accepted", "rejected", "error", "unsupported")
# OTA progress only moves forward: a late or redelivered report never rewinds the state.
OTA_RANK = {"pending": 0, "downloading": 1, "verifying": 2, "applying": 3, "success": 4, "failed": 4}


@dataclass(slots=True)
class DeviceState:
    """Latest facts about one device in a batch."""

    device_id: str
    last_seen: datetime
    status: str | None = None  # online | offline
    status_at: datetime | None = None  # collector receipt time of the message that decided the status
    fw_version: str | None = None
    fw_at: datetime | None = None  # device time of the hello that carried fw_version
    broker_connections: int | None = None  # brokers the device is connected to right now (hello)


@dataclass(frozen=True, slots=True)
class Ack:
    """A device's answer to a command."""

    cmd_id: str
    device_id: str
    result: str
    detail: str | None
    ts: datetime


@dataclass(frozen=True, slots=True)
class OtaProgress:
    """A device's OTA report."""

    cmd_id: str
    device_id: str
    state: str
    progress: float
    detail: str | None
    ts: datetime

    @property
    def order(self) -> tuple[int, float, datetime]:
        """How far along the job this report is."""
        return OTA_RANK[self.state], self.progress, self.ts


@dataclass(slots=True)
class StateBatch:
    """Everything one batch changes, collapsed."""

    devices: list[DeviceState] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    ota: list[OtaProgress] = field(default_factory=list)


class StateStore(Protocol):
    """Applies a collapsed batch in one transaction; ordering guards make re-applying harmless."""

    def apply(self, batch: StateBatch) -> None:
        """Store the batch; raises Unavailable while the database is down."""


def _cmd_id(body: dict) -> str:
    try:
        return str(uuid.UUID(str(body["cmd_id"])))
    except (KeyError, ValueError) as exc:
        raise Rejected("bad_value", f"cmd_id: {exc}") from None


def _detail(body: dict) -> str | None:
    detail = body.get("detail")
    return str(detail)[:1000] if detail is not None else None


def _observed_at(item: Decoded) -> datetime:
    # Connection status follows receipt order: an LWT carries the time it was registered, not when it fired.
    try:
        return parse_time(item.msg.received_at)
    except ValueError:
        return item.ts


def _heard(devices: dict[str, DeviceState], device_id: str, seen: datetime, status: str, at: datetime,
           explicit: bool = False) -> DeviceState:
    """Fold one sign of the device into its state: last seen `seen`, connection `status` as observed `at`."""
    state = devices.get(device_id)
    if state is None:
        state = devices[device_id] = DeviceState(device_id, seen)
    state.last_seen = max(state.last_seen, seen)
    # At equal receipt time an explicit status message beats the "online" implied by other traffic.
    if state.status_at is None or at > state.status_at or (at == state.status_at and explicit):
        state.status, state.status_at = status, at
    return state


def _fold_device(devices: dict[str, DeviceState], item: Decoded) -> None:
    msg, body = item.msg, item.msg.body
    status = body.get("status", "online") if msg.msg_type == "status" else "online"
    if status not in ("online", "offline"):
        raise Rejected("bad_value", f"status must be online or offline, got {str(status)[:20]!r}")
    state = _heard(devices, msg.device_id, item.ts, status, _observed_at(item), explicit=msg.msg_type == "status")
    fw = body.get("fw_version") if msg.msg_type == "hello" else None
    if isinstance(fw, str) and fw and (state.fw_at is None or item.ts >= state.fw_at):
        state.fw_version, state.fw_at = fw[:64], item.ts
        links = body.get("broker_connections")
        state.broker_connections = links if type(links) is int and links >= 0 else None


def _fold_seen(devices: dict[str, DeviceState], notice: SeenNotice) -> None:
    # Heard but not published (a duplicate, a dead letter): alive at the time the collector heard it.
    at = parse_time(notice.received_at)
    _heard(devices, notice.device_id, at, "online", at)


def split_seen(batch: Sequence[DeliveryLike]) -> tuple[list[DeliveryLike], list[int], dict[int, SeenNotice]]:
    """Separate seen notices (from iot.notices) from device messages; returns messages, their batch indexes and
    the notices by index."""
    messages, indexes, notices = [], [], {}
    for index, delivery in enumerate(batch):
        if delivery.body.startswith(b'{"kind"'):
            try:
                notice = SeenNotice.decode(delivery.body)
                parse_time(notice.received_at)
                notices[index] = notice
                continue
            except (ValueError, KeyError, TypeError):
                pass  # not a notice after all: decoded (and rejected) with the messages
        messages.append(delivery)
        indexes.append(index)
    return messages, indexes, notices


def collapse(decoded: Sequence[Decoded], seen: Sequence[SeenNotice] = ()) -> tuple[StateBatch, dict[int, Rejected]]:
    """Reduce a batch to one change per device, command and OTA job."""
    devices: dict[str, DeviceState] = {}
    for notice in seen:
        _fold_seen(devices, notice)
    acks: dict[str, Ack] = {}
    ota: dict[str, OtaProgress] = {}
    rejected: dict[int, Rejected] = {}
    for item in sorted(decoded, key=lambda d: (d.ts, d.msg.seq)):
        msg, body = item.msg, item.msg.body
        try:
            if msg.msg_type == "command_ack":
                ack = Ack(_cmd_id(body), msg.device_id, str(body.get("result")), _detail(body), item.ts)
                if ack.result not in ACK_RESULTS:
                    raise Rejected("bad_value", f"unknown command result {ack.result[:20]!r}")
                acks.setdefault(ack.cmd_id, ack)  # the first answer settles a command
            elif msg.msg_type == "ota_status":
                report = OtaProgress(_cmd_id(body), msg.device_id, str(body.get("ota_state")),
                                     float(body.get("progress_pct", 0)), _detail(body), item.ts)
                if report.state not in OTA_RANK:
                    raise Rejected("bad_value", f"unknown ota_state {report.state[:20]!r}")
                current = ota.get(report.cmd_id)
                if current is None or report.order >= current.order:
                    ota[report.cmd_id] = report
            _fold_device(devices, item)
        except Rejected as exc:
            rejected[item.index] = exc
        except (TypeError, ValueError) as exc:
            rejected[item.index] = Rejected("bad_value", str(exc)[:500])
    batch = StateBatch(sorted(devices.values(), key=lambda s: s.device_id),  # fixed lock order
                       sorted(acks.values(), key=lambda a: a.cmd_id),
                       sorted(ota.values(), key=lambda o: o.cmd_id))
    return batch, rejected


class StateWriter:
    """Batch handler for the collector.state queue."""

    def __init__(self, store: StateStore):
        self._store = store

    def __call__(self, batch: Sequence[DeliveryLike]) -> dict[int, Rejected]:
        """Apply a batch; returns the messages that can never be applied."""
        started = time.monotonic()
        messages, indexes, notices = split_seen(batch)
        decoded, rejected = decode_batch(messages)
        collapsed, bad = collapse(decoded, list(notices.values()))
        rejected = {indexes[i]: exc for i, exc in {**rejected, **bad}.items()}
        try:
            self._store.apply(collapsed)
        except Exception:
            metrics.STORE_ERRORS.labels(WRITER, "postgres").inc()
            raise
        metrics.WRITTEN.labels(WRITER, "devices").inc(len(collapsed.devices))
        metrics.WRITTEN.labels(WRITER, "acks").inc(len(collapsed.acks))
        metrics.WRITTEN.labels(WRITER, "ota").inc(len(collapsed.ota))
        metrics.BATCH_SIZE.labels(WRITER).observe(len(batch))
        metrics.BATCH_SECONDS.labels(WRITER).observe(time.monotonic() - started)
        return rejected
