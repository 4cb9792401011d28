"""Once a second: CPU and RSS of each process (with its children) and the depth of every queue."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import pika
import psutil

from iothub import topology


@dataclass
class Sample:
    """One tick of the sampler."""

    t: float
    cpu: dict[str, float]
    rss_mb: dict[str, float]
    backlog: dict[str, int]


@dataclass
class Sampler:
    """Background sampler; stop() returns what it saw."""

    processes: dict[str, psutil.Process]
    amqp_url: str
    interval: float = 1.0
    wall0: float = 0.0  # unix time of t = 0, to line samples up with publish and store times
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        """Begin sampling on a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        """Stop and return the samples."""
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        return self.samples

    def _run(self) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        channel = conn.channel()
        self.cpu_seconds()  # prime the counters
        t0, self.wall0 = time.monotonic(), time.time()
        last = self.cpu_seconds()
        last_t = time.monotonic()
        try:
            while not self._stop.wait(self.interval):
                now = time.monotonic()
                times = self.cpu_seconds()
                cpu = {k: 100 * (times.get(k, 0) - last.get(k, 0)) / (now - last_t) for k in times}
                last, last_t = times, now
                backlog = {}
                for queue in topology.QUEUES:
                    with contextlib.suppress(Exception):
                        backlog[queue.name] = channel.queue_declare(queue.name, passive=True).method.message_count
                self.samples.append(Sample(now - t0, cpu, self._rss(), backlog))
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def _family(self, proc: psutil.Process) -> list[psutil.Process]:
        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu_seconds(self) -> dict[str, float]:
        """Cumulative CPU seconds (user + system) of each named process and its children."""
        out = {}
        for name, proc in self.processes.items():
            total = 0.0
            for p in self._family(proc):
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    # children_*: exited children it reaped (PostgreSQL backends), so a closed connection's work counts
                    total += t.user + t.system + t.children_user + t.children_system
            out[name] = total
        return out

    def _rss(self) -> dict[str, float]:
        out = {}
        for name, proc in self.processes.items():
            total = 0
            for p in self._family(proc):
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            out[name] = total / 2**20
        return out


def peak(samples: list[Sample], what: str) -> dict[str, float]:
    """Per process: the peak RSS ('rss_mb') or the median CPU % ('cpu') over the samples."""
    names = {k for s in samples for k in getattr(s, what)}
    if what == "rss_mb":
        return {n: max(s.rss_mb.get(n, 0) for s in samples) for n in names}
    result = {}
    for n in names:
        values = sorted(s.cpu.get(n, 0) for s in samples)
        result[n] = values[len(values) // 2] if values else 0.0
    return result
