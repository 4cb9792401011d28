"""Run IoT Hub services as real subprocesses (python -m <pkg>) for end-to-end, fault and benchmark runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support import mqtt as test_mqtt
from tests.support.poll import wait_for
from tests.support.procs import free_port

MODULES = {"collector": "collector", "rule-engine": "rule_engine", "notifier": "notifier", "simulator": "simulator"}


@dataclass
class ServiceProcess:
    """One service process; killable and restartable with the same environment."""

    name: str
    argv: list[str]
    env: dict[str, str]
    logdir: Path
    metrics_port: int | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)
    starts: int = 0

    def start(self, *, wait_healthy: bool = True, timeout: float = 30.0) -> ServiceProcess:
        """Start the process and wait until its /healthz answers."""
        self.starts += 1
        with open(self.logdir / f"{self.name}.{self.starts}.log", "wb") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if wait_healthy and self.metrics_port:
            wait_for(self._healthy, timeout=timeout, what=f"{self.name} /healthz")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return requests.get(f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def metrics(self) -> str:
        """The Prometheus exposition text of the process."""
        return requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def kill(self) -> None:
        """SIGKILL the process: no cleanup, no flush, like a power cut."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; SIGKILL after the timeout."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def restart(self) -> None:
        """Kill and start again."""
        self.kill()
        self.start()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the current log, for failure messages."""
        path = self.logdir / f"{self.name}.{self.starts}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


# The collector's stages as processes of their own (docs/protocol.md "Ingest stages"), as the Procfile runs them.
STAGES = {"collector-edge": ("edge",), "collector-sequencer": ("sequencer",), "collector-series": ("series",),
          "collector-archive": ("archive",), "collector-state": ("state",),
          "collector-dead-letters": ("dead_letters",), "collector-energy": ("energy",)}
STAGED_PLATFORM = (*STAGES, "rule-engine", "notifier")


def service(name: str, env: dict[str, str], logdir: Path, *, args: tuple[str, ...] = ()) -> ServiceProcess:
    """A service (or collector stage, see STAGES) process with its own metrics port and our environment plus env."""
    port = free_port()
    full_env = {**os.environ, "METRICS_PORT": str(port), "LOG_LEVEL": "INFO", **env}
    if name == "simulator" and "MQTT_TLS_CA" in env:  # the fleet publishes as many devices; bridges only read
        full_env.update(test_mqtt.env(test_mqtt.FLEET))
    module, stage_args = (MODULES["collector"], STAGES[name]) if name in STAGES else (MODULES[name], ())
    argv = [sys.executable, "-m", module, *stage_args, *args]
    return ServiceProcess(name, argv, full_env, logdir, metrics_port=port)


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of one metric whose labels include the given ones."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
    return total


PLATFORM = ("collector", "rule-engine", "notifier")


@contextlib.contextmanager
def running_platform(env: dict[str, str], logdir: Path, started: dict[str, ServiceProcess] | None = None):
    """Start collector, rule-engine and notifier (into `started` if given); stop whatever started on exit."""
    started = {} if started is None else started
    try:
        for name in PLATFORM:
            started[name] = service(name, env, logdir).start(timeout=60)
        yield started
    finally:
        for proc in started.values():
            with contextlib.suppress(Exception):
                proc.stop()
