"""Start the real stack for a benchmark: Mosquitto, SeaweedFS, a fresh database and vhost, and the services.

The only place the benchmark starts the platform. The rest of bench/ needs from it: start_infra(), service_env()
(S3 settings for the archive probe), start_services(), processes() (name -> psutil.Process, every process to sample
and charge CPU to), dsn, amqp_url, mqtt.port and stop().
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.support import infra, procs
from tests.support import mqtt as test_mqtt
from tests.support.services import STAGED_PLATFORM, ServiceProcess, service


@dataclass
class Stack:
    """Everything one benchmark run started, so it can be measured and torn down."""

    workdir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    dsn: str = ""
    amqp_url: str = ""
    mqtt: procs.Server | None = None
    s3: procs.Server | None = None
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    derive: bool = True  # METERING_DERIVE: derived power published with accepted telemetry (docs/metering.md)

    @property
    def db_name(self) -> str:
        """The run's database."""
        return f"iothub_bench_{self.run_id}"

    @property
    def vhost(self) -> str:
        """The run's RabbitMQ vhost."""
        return f"iothub-bench-{self.run_id}"

    def start_infra(self) -> None:
        """Database, vhost, Mosquitto and S3."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dsn = infra.create_database(self.db_name)
        self.amqp_url = infra.create_vhost(self.vhost)
        (self.workdir / "mqtt").mkdir(exist_ok=True)
        (self.workdir / "s3").mkdir(exist_ok=True)
        self.mqtt = procs.mosquitto(self.workdir / "mqtt").start()
        self.s3 = procs.seaweed_s3(self.workdir / "s3").start(timeout=60)

    def service_env(self) -> dict[str, str]:
        """Environment shared by the services."""
        return {
            "IOTHUB_ENV": "development", "DATABASE_URL": self.dsn, "AMQP_URL": self.amqp_url,
            "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(self.mqtt.port), **test_mqtt.env(),  # TLS, the bridges' account
            "MQTT_CLIENT_ID": f"bench-collector-{self.run_id}", "HTTP_INGEST_ENABLED": "false",
            "SERIES_BACKENDS": "postgres", "ARCHIVE_BACKEND": "s3",
            "S3_ENDPOINT": f"127.0.0.1:{self.s3.port}", "S3_ACCESS_KEY": "bench", "S3_SECRET_KEY": "benchbench",
            "S3_BUCKET": "iot-data", "S3_SECURE": "false", "METERING_DERIVE": str(self.derive).lower(),
        }

    # One process per collector stage, as `make run` starts them: the report charges CPU to each by name.
    def start_services(self, names: tuple[str, ...] = STAGED_PLATFORM) -> None:
        """Start the named services as subprocesses and wait for their health endpoints."""
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        for name in names:
            self.services[name] = service(name, self.service_env(), logs).start(timeout=60)

    def processes(self) -> dict[str, psutil.Process]:
        """Processes to sample: our services and the brokers and database they use."""
        found = {name: psutil.Process(svc.proc.pid) for name, svc in self.services.items() if svc.proc}
        if self.mqtt and self.mqtt.proc:
            found["mosquitto"] = psutil.Process(self.mqtt.proc.pid)
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmd = " ".join(proc.info["cmdline"] or [])
            if proc.info["name"] == "beam.smp" and "rabbit" in cmd:
                found["rabbitmq"] = proc
            elif proc.info["name"] == "postgres" and "-D" in cmd:
                found["postgresql"] = proc  # postmaster; its children are summed by the sampler
        return found

    def stop(self) -> None:
        """Tear everything down, whatever failed before."""
        for svc in self.services.values():
            with contextlib.suppress(Exception):
                svc.stop()
        for server in (self.mqtt, self.s3):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()
        with contextlib.suppress(Exception):
            infra.delete_vhost(self.vhost)
        with contextlib.suppress(Exception):
            infra.drop_database(self.db_name)
