"""Simulator options: CLI flags whose defaults come from environment variables (read only here)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from iothub.mqtt_tls import MqttAuth
from iothub.settings import Env, SettingsError, host_ports, require_url_password
from simulator.config import Broker, parse_brokers
from simulator.faults import FaultRates
from simulator.profile import PROFILES
from simulator.values import DEVICE_TYPES


@dataclass(frozen=True)
class Settings:
    """Everything one simulator process needs."""

    command: str  # run | provision
    environment: str
    log_level: str
    profile: str  # iothub | spec (simulator.profile.PROFILES)
    mqtt_host: str
    mqtt_port: int
    brokers: tuple[Broker, ...]  # every message goes to all of them (REQ-BROKER-001)
    mqtt_auth: MqttAuth  # TLS + the shared connections' account (MQTT_TLS_CA, MQTT_USERNAME, MQTT_PASSWORD)
    credentials_file: str | None  # per-device mode: device_id -> its own MQTT password (simulator provision)
    admin_auth: MqttAuth  # provision: the broker's dynsec admin account, to issue those passwords
    topic_prefix: str
    keepalive: int
    connection_mode: str  # shared | per-device
    pool_size: int
    max_inflight: int
    devices: int
    start_index: int
    id_prefix: str
    type_mix: tuple[tuple[str, float], ...]
    fw_version: str
    sampling_interval_s: float
    send_interval_s: float
    hello_interval_s: float
    samples_per_datagram: int
    ramp_s: float
    faults: FaultRates
    ota_failure_rate: float
    ota_step_s: float
    duration_s: float
    max_messages: int
    rate: float
    seed: int | None
    ledger: str | None
    metrics_port: int
    database_url: str
    command_key_seed: bytes | None = None  # derives each device's command key (simulator.keys); None: none known
    command_key_kek: str | None = None  # COMMAND_KEY_KEK, for `provision` to store the keys as the server does
    ota_download: bool = True  # download and verify start_ota's image (REQ-OTA-001); False: simulate the steps only
    ota_download_timeout_s: float = 30.0

    def device_id(self, index: int) -> str:
        """Id of fleet member `index` (the same in provision and run)."""
        return f"{self.id_prefix}-{index:06d}"


def parse_mix(text: str) -> tuple[tuple[str, float], ...]:
    """'power_meter_dc:3,power_meter_ac:1' (weights optional) -> ((name, weight), ...)."""
    mix = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, weight = part.partition(":")
        if name not in DEVICE_TYPES:
            raise SettingsError(f"unknown device type {name!r}; known: {', '.join(DEVICE_TYPES)}")
        try:
            mix.append((name, float(weight) if weight else 1.0))
        except ValueError:
            raise SettingsError(f"bad weight in {part!r}") from None
    if not mix or sum(w for _, w in mix) <= 0:
        raise SettingsError("the device type mix needs at least one positive weight")
    return tuple(mix)


def parse_broker_list(text: str, default_port: int) -> tuple[Broker, ...]:
    """'host:port,host:port' (port optional) -> ((host, port), ...): 1 to 5 distinct brokers."""
    items = [{"host": host, "port": port} for host, port in host_ports(text, default_port, name="--brokers")]
    try:
        return parse_brokers(items, "--brokers")  # the spec's 1 to 5
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def build_parser(env: Env) -> argparse.ArgumentParser:
    """The CLI; every default reads its environment variable."""
    p = argparse.ArgumentParser(prog="python -m simulator", description="Fleet simulator of protocol v2 meters.")
    p.add_argument("command", nargs="?", choices=("run", "provision"), default="run")
    readers = {str: env.str, int: env.int, float: env.float}

    def a(flag: str, name: str, kind: type, default, text: str = "", **kw) -> None:
        p.add_argument(flag, *kw.pop("aliases", ()), type=kind, default=readers[kind](name, default),
                       help=f"{text} [env {name}; default %(default)s]".strip(), **kw)

    a("--profile", "SIM_PROFILE", str, "iothub",
      "iothub: docs/protocol.md as IoT Hub's own devices speak it; spec: a meter built to the fleet's firmware spec "
      "v2 (QoS 2, whole-second timestamps, no unit on pf, hellos only when send > hello interval, spec config "
      "ranges, MQTT 5 persistent session)", choices=tuple(PROFILES))
    a("--mqtt-host", "MQTT_HOST", str, "127.0.0.1")
    a("--mqtt-port", "MQTT_PORT", int, 1883)
    a("--brokers", "SIM_BROKERS", str, "", "host:port,... (1 to 5): every message is published to all of them; "
      "empty: MQTT_HOST:MQTT_PORT")
    a("--topic-prefix", "MQTT_TOPIC_PREFIX", str, "", "prepended to every iot/... topic")
    p.add_argument("--keepalive", type=int, default=env.optional("SIM_KEEPALIVE") and env.int("SIM_KEEPALIVE", 0),
                   help="MQTT keep-alive seconds [env SIM_KEEPALIVE; default 30, 15 in the spec profile]")
    a("--connection-mode", "SIM_CONNECTION_MODE", str, "shared",
      "shared: a pool of connections publishes for all devices (Last Will per connection only); "
      "per-device: one connection and a real Last Will per device (small fleets)", choices=("shared", "per-device"))
    a("--credentials-file", "SIM_CREDENTIALS_FILE", str, "",
      "JSON {device_id: password}: per-device connections log in as their device (provision --issue writes it)")
    a("--pool-size", "SIM_POOL_SIZE", int, 4, "connections in shared mode")
    a("--max-inflight", "SIM_MAX_INFLIGHT", int, 1000, "unacknowledged QoS 1/2 messages per connection")
    a("--devices", "SIM_DEVICES", int, 10, aliases=("--count",), dest="devices")
    a("--start-index", "SIM_START_INDEX", int, 0, "first fleet index (split a fleet over processes)")
    a("--id-prefix", "SIM_ID_PREFIX", str, "sim", "device ids are PREFIX-000123")
    a("--type-mix", "SIM_TYPE_MIX", str, "power_meter_dc:1,power_meter_ac:1", "device types with weights")
    a("--fw-version", "SIM_FW_VERSION", str, "1.0.0")
    a("--sampling-interval", "SIM_SAMPLING_INTERVAL_S", float, 1.0, "seconds between samples")
    a("--send-interval", "SIM_SEND_INTERVAL_S", float, 10.0, "seconds between telemetry datagrams")
    a("--hello-interval", "SIM_HELLO_INTERVAL_S", float, 60.0, "seconds between heartbeat hellos")
    a("--samples-per-datagram", "SIM_SAMPLES_PER_DATAGRAM", int, 0, "0: send interval / sampling interval")
    a("--ramp", "SIM_RAMP_S", float, 0.0, "spread power-on over this many seconds")
    a("--duplicate-rate", "SIM_DUPLICATE_RATE", float, 0.0, "per telemetry tick: re-send the previous datagram")
    a("--gap-rate", "SIM_GAP_RATE", float, 0.0, "per telemetry tick: skip 1..max-gap seq numbers")
    a("--max-gap", "SIM_MAX_GAP", int, 5)
    a("--reboot-rate", "SIM_REBOOT_RATE", float, 0.0, "per telemetry tick: reboot (seq from 0)")
    a("--malformed-rate", "SIM_MALFORMED_RATE", float, 0.0, "per telemetry tick: also send a broken message")
    a("--out-of-range-rate", "SIM_OUT_OF_RANGE_RATE", float, 0.0, "per telemetry tick: one reading out of limits")
    a("--ota-failure-rate", "SIM_OTA_FAILURE_RATE", float, 0.0, "probability that an update fails")
    a("--ota-step", "SIM_OTA_STEP_S", float, 1.0, "seconds between OTA reports")
    p.add_argument("--ota-download", action=argparse.BooleanOptionalAction, default=env.bool("SIM_OTA_DOWNLOAD", True),
                   help="download start_ota's image and check its size and SHA-256 [env SIM_OTA_DOWNLOAD; default "
                        "%(default)s]")
    a("--ota-download-timeout", "SIM_OTA_DOWNLOAD_TIMEOUT_S", float, 30.0, "seconds per firmware download")
    a("--duration", "SIM_DURATION_S", float, 0.0, "stop after this many seconds (0: until stopped)")
    a("--max-messages", "SIM_MAX_MESSAGES", int, 0, "stop after publishing this many messages (0: no limit)")
    a("--rate", "SIM_RATE", float, 0.0, "target telemetry messages/s for the fleet (overrides --send-interval)")
    p.add_argument("--seed", type=int, default=env.optional("SIM_SEED") and env.int("SIM_SEED", 0),
                   help="random seed [env SIM_SEED]")
    p.add_argument("--ledger", default=env.optional("SIM_LEDGER"),
                   help="append device_id,epoch,seq,msg_type,publish_ts rows to this CSV [env SIM_LEDGER]")
    a("--metrics-port", "METRICS_PORT", int, 9140, "Prometheus /metrics port (0 disables)")
    a("--database-url", "DATABASE_URL", str, "postgresql://postgres@127.0.0.1:5432/iothub", "for provision")
    a("--log-level", "LOG_LEVEL", str, "INFO")
    return p


def load(argv: Sequence[str] | None = None, env: Env | None = None) -> Settings:
    """Parse flags over environment defaults; raises SettingsError on nonsense."""
    env = env or Env()
    ns = build_parser(env).parse_args(argv)
    environment = env.str("IOTHUB_ENV", "production")
    send = ns.send_interval if ns.rate <= 0 else ns.devices / ns.rate
    for name in ("sampling_interval", "hello_interval", "ota_step"):
        if getattr(ns, name) <= 0:
            raise SettingsError(f"--{name.replace('_', '-')} must be positive")
    if send <= 0 or ns.devices < 0 or ns.pool_size < 1:
        raise SettingsError("send interval and pool size must be positive, devices >= 0")
    if ns.command == "provision":  # the only command that talks to the database
        require_url_password(environment, "DATABASE_URL", ns.database_url)
    brokers = parse_broker_list(ns.brokers, ns.mqtt_port) if ns.brokers else ((ns.mqtt_host, ns.mqtt_port),)
    keepalive = ns.keepalive if ns.keepalive is not None else PROFILES[ns.profile].keepalive
    seed, kek = env.optional("SIM_COMMAND_KEY_SEED"), env.optional("COMMAND_KEY_KEK")
    if ns.command == "provision" and seed and not kek:
        raise SettingsError("provision stores command keys: COMMAND_KEY_KEK must be set with SIM_COMMAND_KEY_SEED")
    rates = FaultRates(ns.duplicate_rate, ns.gap_rate, ns.reboot_rate, ns.malformed_rate, ns.out_of_range_rate,
                       ns.max_gap)
    return Settings(
        command=ns.command, environment=environment, log_level=ns.log_level, profile=ns.profile,
        mqtt_host=ns.mqtt_host, mqtt_port=ns.mqtt_port, brokers=brokers, mqtt_auth=MqttAuth(
            ca_file=env.optional("MQTT_TLS_CA"), username=env.optional("MQTT_USERNAME"),
            password=env.optional("MQTT_PASSWORD")), credentials_file=ns.credentials_file or None,
        admin_auth=MqttAuth(ca_file=env.optional("MQTT_TLS_CA"),
                            username=env.str("MQTT_ADMIN_USERNAME", "iothub-admin"),
                            password=env.optional("MQTT_ADMIN_PASSWORD")),
        topic_prefix=ns.topic_prefix, keepalive=keepalive,
        connection_mode=ns.connection_mode, pool_size=ns.pool_size, max_inflight=ns.max_inflight,
        devices=ns.devices, start_index=ns.start_index, id_prefix=ns.id_prefix, type_mix=parse_mix(ns.type_mix),
        fw_version=ns.fw_version, sampling_interval_s=ns.sampling_interval, send_interval_s=send,
        hello_interval_s=ns.hello_interval, samples_per_datagram=ns.samples_per_datagram, ramp_s=ns.ramp,
        faults=rates, ota_failure_rate=ns.ota_failure_rate, ota_step_s=ns.ota_step, duration_s=ns.duration,
        max_messages=ns.max_messages, rate=ns.rate, seed=ns.seed, ledger=ns.ledger,
        metrics_port=ns.metrics_port, database_url=ns.database_url, command_key_seed=seed.encode() if seed else None,
        command_key_kek=kek, ota_download=ns.ota_download, ota_download_timeout_s=ns.ota_download_timeout,
    )
