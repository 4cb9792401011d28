"""Composition root: `python -m collector [stage ...]` runs the named stages until SIGTERM/SIGINT.

Stages: `edge` (MQTT/HTTP bridges), `sequencer` (one replica of the partition sequencers), `writers` (every
writer in WRITERS) or one writer by name (`series`, `archive`, `state`, `dead_letters`, `energy`). Without
arguments the stages in COLLECTOR_STAGES run (default: all of them, one process for a single node). Each stage
scales on its own: edges share MQTT subscriptions, sequencers share partitions, writers are competing consumers.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading

from collector import settings as settings_module
from collector.writers import start_writers
from collector.writers.runner import WRITERS
from iothub import health, logs
from iothub.db import Database
from iothub.settings import SettingsError, load_or_exit

log = logging.getLogger("collector")
STAGES = ("edge", "sequencer", "writers")


def parse_stages(args: list[str], settings: settings_module.Settings) -> settings_module.Settings:
    """Settings narrowed to the stages (and writers) named on the command line."""
    names = tuple(args) or settings.stages
    unknown = [n for n in names if n not in STAGES and n not in WRITERS]
    if unknown:
        raise SettingsError(f"unknown collector stage(s) {unknown}: use {', '.join(STAGES + WRITERS)}")
    writers = tuple(n for n in names if n in WRITERS)
    stages = tuple(n for n in names if n in STAGES) + (("writers",) if writers else ())
    narrowed = dataclasses.replace(settings, stages=stages, writers=writers or settings.writers)
    settings_module.require_stage_secrets(narrowed)
    return narrowed


def main(args: list[str] | None = None) -> int:
    """Run until a termination signal, then stop gracefully."""
    settings = load_or_exit("collector", lambda: parse_stages(sys.argv[1:] if args is None else args,
                                                              settings_module.load()))
    # The MQTT and RabbitMQ I/O threads hand the GIL to each other several times per message; with the default
    # 5 ms switch interval each handoff can stall behind a busy thread. Noisy trials looked faster with 0.5 ms;
    # not proven by a clean A/B run yet (docs/benchmarks.md).
    sys.setswitchinterval(0.0005)
    logs.configure("collector", settings.log_level)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    db = Database(settings.database_url, maxconn=8, application_name=f"collector-{'-'.join(settings.stages)}")
    stages = []
    if "sequencer" in settings.stages:
        from collector.sequencing.app import SequencerStage

        stages.append(SequencerStage(settings, db))
    if "edge" in settings.stages:
        from collector.edge.app import Edge

        stages.append(Edge(settings, db))
    checks = {f"{type(s).__name__.lower()}-{k}": v for s in stages for k, v in s.checks().items()}
    server = health.serve(settings.metrics_port, checks=checks)
    for stage in stages:  # the sequencer first, so the first bridged message finds its partition owned
        stage.start(timeout=60)
    writers = start_writers(settings, db, stop) if "writers" in settings.stages else []
    checks.update({f"writer-{w.name}": w.ready for w in writers})  # read live by /readyz
    log.info("collector started", extra={"stages": list(settings.stages), "writers": [w.name for w in writers],
                                         "metrics_port": server.server_port})
    stop.wait()
    log.info("collector stopping")
    for stage in reversed(stages):  # the edge first, so the sequencer sees everything the edge took in
        stage.stop()
    for writer in writers:
        writer.stop()
    for writer in writers:  # let in-flight batches finish and ack rather than be redelivered later
        writer.join(10)
    server.shutdown()
    db.close()
    log.info("collector stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
