"""The fleet engine: devices, their timers and faults, behind a publishing port (commands: fleet_commands.py)."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter
from typing import Any, Protocol

import orjson

from iothub.contract.topics import device_topic
from simulator import faults
from simulator.config import Broker, DeviceConfig
from simulator.device import Device
from simulator.firmware import Downloader
from simulator.fleet_commands import CommandHandling
from simulator.keys import device_key
from simulator.profile import PROFILES
from simulator.scheduler import Scheduler
from simulator.settings import Settings
from simulator.values import ValueModel, type_for_index

DOWNLOAD_POLL_S = 0.05
TOPIC_OF = {"telemetry": "telemetry", "hello": "hello", "command_ack": "command/ack", "ota_status": "ota/status",
            "status": "status"}


class Sink(Protocol):
    """Publishes device messages to each device's brokers (the MQTT adapter, or an in-memory list in tests)."""

    owns_status: bool  # True when the connection itself publishes online status and the Last Will

    def publish(self, index: int, topic: str, payload: bytes, retain: bool = False, qos: int = 1) -> bool:
        """Queue one message for the device's connections; False when it was refused."""

    def connected_brokers(self, index: int) -> int:
        """How many of the device's brokers it is connected to now."""

    def set_brokers(self, index: int, brokers: tuple[Broker, ...], offline: tuple[str, bytes]) -> None:
        """Publish the device's messages to `brokers` from now on; `offline` (topic, body) to each one it leaves."""


class Ledger(Protocol):
    """Records the first publish of every sequenced message."""

    def record(self, device_id: str, epoch: int, seq: int, msg_type: str, ts: float) -> None:
        """Append one row."""


class Fleet(CommandHandling):
    """Drives every device from one thread; not thread-safe, feed commands through `inbox`."""

    def __init__(self, settings: Settings, sink: Sink, ledger: Ledger | None = None, *,
                 rng: random.Random | None = None, clock=time.time, inbox: queue.Queue | None = None):
        self.s = settings
        self.profile = PROFILES[settings.profile]
        self.sink = sink
        self.ledger = ledger
        self.rng = rng or random.Random(settings.seed)
        self.clock = clock
        self.timers = Scheduler()
        # (device_id, raw command, broker it came from) from the network threads
        self.inbox: queue.Queue[tuple[str, bytes, Broker | None]] = inbox if inbox is not None else queue.Queue()
        self.published: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.commands: Counter[tuple[str, str]] = Counter()
        self.default_config = DeviceConfig(settings.sampling_interval_s, settings.send_interval_s,
                                           settings.hello_interval_s, settings.samples_per_datagram, settings.brokers)
        self.downloader = Downloader(timeout=settings.ota_download_timeout_s) if settings.ota_download else None
        self.devices = [self._make(i) for i in range(settings.devices)]
        self.by_id = {d.device_id: d for d in self.devices}

    def _make(self, i: int) -> Device:
        index = self.s.start_index + i
        kind = type_for_index(index, self.s.type_mix)
        device_id = self.s.device_id(index)
        return Device(device_id, kind, i, self.s.fw_version, self.default_config,
                      ValueModel(kind, self.rng, self.profile.metrics.get(kind)), profile=self.profile,
                      command_key=device_key(self.s.command_key_seed, device_id))

    @property
    def total_published(self) -> int:
        """Messages handed to the sink, all types and faults included."""
        return sum(self.published.values())

    # -- publishing ----------------------------------------------------------------------------------------

    def _send(self, d: Device, body: dict[str, Any], retain: bool = False) -> bytes:
        payload = orjson.dumps(body)
        sent = self._raw(d, body.get("msg_type", "status"), payload, retain)
        if sent and "seq" in body and self.ledger is not None:
            self.ledger.record(d.device_id, d.epoch, body["seq"], body["msg_type"], self.clock())
        return payload

    def _raw(self, d: Device, msg_type: str, payload: bytes, retain: bool = False, label: str | None = None) -> bool:
        topic = device_topic(d.device_id, TOPIC_OF[msg_type], self.s.topic_prefix)
        if self.sink.publish(d.index, topic, payload, retain, self.profile.qos[msg_type]):
            self.published[label or msg_type] += 1
            return True
        self.errors["refused"] += 1
        return False

    # -- timers --------------------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Schedule every device's power-on within the ramp."""
        for d in self.devices:
            self.timers.arm(now + self.rng.uniform(0.0, self.s.ramp_s), d.index, "power_on")

    def step(self, now: float, limit: int = 1000) -> int:
        """Run up to `limit` timers due by monotonic `now`; returns how many ran."""
        done = 0
        while done < limit:
            item = self.timers.pop_due(now)
            if item is None:
                break
            due, index, kind = item
            getattr(self, f"_on_{kind}")(self.devices[index], due, now)
            done += 1
        return done

    def _boot(self, d: Device, now: float, hello: bool = False) -> None:
        """Power on; `hello` forces the boot hello even where REQ-HELLO-001 suppresses it."""
        d.booted_at = self.clock()
        if not self.sink.owns_status:
            self._send(d, d.status(d.booted_at, online=True), retain=True)
        if hello or self.profile.sends_hellos(d.config):  # else the first message is telemetry with seq 0
            self._hello(d, d.booted_at)
        self.timers.arm(now + self.rng.uniform(0.0, d.config.send_interval_s), d.index, "telemetry")
        self._arm_hello(d, now + d.config.hello_interval_s)

    def _hello(self, d: Device, wall: float) -> None:
        self._send(d, d.hello(wall, self.rng, self.sink.connected_brokers(d.index)))

    def _arm_hello(self, d: Device, at: float) -> None:
        if self.profile.sends_hellos(d.config):
            self.timers.arm(at, d.index, "hello")
        else:  # REQ-HELLO-001: the datagrams are the heartbeat
            self.timers.cancel(d.index, "hello")

    def _on_power_on(self, d: Device, due: float, now: float) -> None:
        self._boot(d, now)

    def _reboot(self, d: Device, now: float, hello: bool = False) -> None:
        d.reboot(self.clock())
        self.timers.cancel(d.index, "ota")
        self._boot(d, now, hello)

    def _on_hello(self, d: Device, due: float, now: float) -> None:
        self._hello(d, self.clock())
        self._arm_hello(d, max(due + d.config.hello_interval_s, now))

    def _on_telemetry(self, d: Device, due: float, now: float) -> None:
        f = faults.decide(self.s.faults, self.rng)
        if f.reboot:
            self.faults["reboot"] += 1
            self._reboot(d, now)
            return
        if f.gap:
            d.seq.skip(f.gap)
            self.faults["gap"] += 1
            self.faults["gap_seqs"] += f.gap
        body = d.telemetry(self.clock(), self.rng)
        if f.out_of_range:
            faults.corrupt_reading(body, d.device_type, self.rng)
            self.faults["out_of_range"] += 1
        if f.malformed:
            # Same seq as the valid datagram that follows, so a malformed message never looks like a gap.
            self._raw(d, "telemetry", faults.malformed(f.malformed, body), label="malformed")
            self.faults[f"malformed_{f.malformed}"] += 1
        payload = self._send(d, body)
        if f.duplicate:
            self._raw(d, "telemetry", d.last_payload or payload, label="duplicate")
            self.faults["duplicate"] += 1
        d.last_payload = payload
        self.timers.arm(max(due + d.config.send_interval_s, now), d.index, "telemetry")

    def _on_ota(self, d: Device, due: float, now: float) -> None:
        job = d.ota
        if job is None:
            return
        if job.downloading():  # the real image is still on its way: verify it before saying anything more
            self.timers.arm(now + DOWNLOAD_POLL_S, d.index, "ota")
            return
        step = job.advance()
        self._send(d, d.ota_status(self.clock(), job.cmd_id, step.state, step.progress, target=job.target,
                                 detail=step.detail))
        if not step.final:
            self.timers.arm(now + self.s.ota_step_s, d.index, "ota")
            return
        d.ota = None
        if step.state == "success":
            d.fw_version = job.target
            self._reboot(d, now, hello=True)  # REQ-OTA-005: the new firmware boots and says hello with its version

    # -- loop ----------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, monotonic=time.monotonic) -> None:
        """Fire timers and handle commands until `stop`, the duration or the message budget ends it."""
        started = monotonic()
        self.start(started)
        end = started + self.s.duration_s if self.s.duration_s > 0 else float("inf")
        while not stop.is_set():
            now = monotonic()
            if now >= end or (self.s.max_messages and self.total_published >= self.s.max_messages):
                break
            self._drain(now)
            budget = self.s.max_messages - self.total_published if self.s.max_messages else 1000
            if self.step(now, limit=max(1, min(1000, budget // 3))):
                continue
            due = self.timers.next_due()
            wait = min(0.5, end - now, (due - now) if due is not None else 0.5)
            try:
                device_id, raw, broker = self.inbox.get(timeout=max(0.0, wait))
            except queue.Empty:
                continue
            self.handle_command(device_id, raw, monotonic(), broker)

    def _drain(self, now: float) -> None:
        while True:
            try:
                device_id, raw, broker = self.inbox.get_nowait()
            except queue.Empty:
                return
            self.handle_command(device_id, raw, now, broker)

    def shutdown(self) -> None:
        """Say goodbye: a retained offline status for every device (a clean disconnect fires no Last Will)."""
        now = self.clock()
        if self.downloader is not None:
            self.downloader.close()
        for d in self.devices:
            self._send(d, d.status(now, online=False), retain=True)
