"""The fleet's command side: acknowledge, carry out once, answer repeats (redeliveries, other brokers) sparingly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from iothub.contract.signing import SignatureError, parse_time, verify
from iothub.contract.topics import device_topic
from simulator import commands
from simulator.config import Broker, DeviceConfig
from simulator.device import Device
from simulator.ota import OtaJob

REMEMBERED_ACKS = 16  # always kept; older ones too while their signature is valid (a replay must not run twice)
MAX_REMEMBERED_ACKS = 1024  # per device, a bound on memory whatever the command rate


@dataclass(slots=True)
class CachedAck:
    """A handled command's answer, and the brokers a repeat of it was already answered for."""

    result: str
    detail: str
    exp: datetime | None = None  # until when a replay of the signed command would verify
    answered: set[Broker | None] = field(default_factory=set)


class CommandHandling:
    """Mixed into Fleet: uses its devices, timers, sink and publishing."""

    def handle_command(self, device_id: str, raw: bytes, now: float, broker: Broker | None = None) -> None:
        """Acknowledge one command and carry it out; `broker` is where it came from (None: unknown)."""
        d = self.by_id.get(device_id)
        if d is None or not d.booted_at:  # not ours, or not powered on yet: a real device would not hear it
            return
        if broker is not None and broker not in d.config.brokers:  # a shared pool hears every device's commands
            return
        body = commands.read(raw)
        if body is None:
            self.errors["unreadable_command"] += 1
            return
        cmd_id = body["cmd_id"]
        cached = d.acks.get(cmd_id)
        try:
            verify(d.command_key, d.device_id, body, datetime.fromtimestamp(self.clock(), UTC))
        except SignatureError as exc:
            # A repeat of a command already carried out may arrive after its expiry: answer it as before.
            if cached is None or str(exc) != "expired":
                self.commands[(str(body.get("cmd"))[:40], "rejected")] += 1
                self.errors["command_signature"] += 1
                self._send(d, d.command_ack(self.clock(), cmd_id, "rejected", str(exc)))
                return
        if cached is not None:
            # Never act twice. A repeat from a broker (a redelivery, or the copy the server sent through another
            # broker) is answered again once per broker, so a lost ack is recovered without an ack storm.
            if broker not in cached.answered:
                cached.answered.add(broker)
                self._send(d, d.command_ack(self.clock(), cmd_id, cached.result, cached.detail))
            return
        decision = commands.decide(body, d.config, d.ota is not None, self.profile)
        self.commands[(decision.cmd, decision.result)] += 1
        now_utc = datetime.fromtimestamp(self.clock(), UTC)
        d.acks[cmd_id] = CachedAck(decision.result, decision.detail, parse_time(body["exp"], "exp"))
        _forget(d.acks, now_utc)
        self._send(d, d.command_ack(self.clock(), cmd_id, decision.result, decision.detail))
        self._apply(d, decision, now)

    def _apply(self, d: Device, decision: commands.Decision, now: float) -> None:
        if decision.action == "config" and decision.config is not None:
            self._configure(d, decision.config)
            self.timers.arm(now + d.config.send_interval_s, d.index, "telemetry")
            self._arm_hello(d, now + d.config.hello_interval_s)
        elif decision.action == "ota" and decision.ota is not None:
            req = decision.ota
            download = self.downloader.submit(req.url, req.sha256, req.size) if self.downloader else None
            d.ota = OtaJob(decision.cmd_id, req, self.rng, self.s.ota_failure_rate, download)
            self.timers.arm(now, d.index, "ota")
        elif decision.action == "hello":  # request_status: an immediate hello, suppressed or not
            self._hello(d, self.clock())
        elif decision.action in ("reboot", "factory_reset"):
            if decision.action == "factory_reset":
                self._configure(d, self.default_config)
            self._reboot(d, now)

    def _configure(self, d: Device, config: DeviceConfig) -> None:
        """Apply a configuration; a new broker list moves the device's connections."""
        old, d.config = d.config, config
        if config.brokers == old.brokers:
            return
        topic = device_topic(d.device_id, "status", self.s.topic_prefix)
        self.sink.set_brokers(d.index, config.brokers, (topic, orjson.dumps(d.status(self.clock(), online=False))))
        if not self.sink.owns_status:  # the brokers it joined have not heard it is online
            self._send(d, d.status(self.clock(), online=True), retain=True)


def _forget(acks: dict[str, CachedAck], now: datetime) -> None:
    """Drop the oldest answers beyond REMEMBERED_ACKS whose command can no longer verify, and any beyond the bound."""
    while len(acks) > REMEMBERED_ACKS:
        oldest = next(iter(acks))
        if len(acks) <= MAX_REMEMBERED_ACKS and acks[oldest].exp is not None and acks[oldest].exp >= now:
            return
        acks.pop(oldest)
