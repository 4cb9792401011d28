"""Load steps: fixed mode is one step, ramp mode steps up until one is not sustained; each step is measured alike."""

from __future__ import annotations

import time
from pathlib import Path

from bench import measure, summary
from bench.archive_probe import ArchiveProbe
from bench.load import Fleet, simulate
from bench.sampler import Sampler
from bench.stack import Stack
from tests.support.poll import wait_for

STALL_S = 60  # no progress for this long: report what is missing instead of waiting forever


def drain(stack: Stack, sampler: Sampler, fleet: Fleet, sent: dict, probe: ArchiveProbe, timeout: float = 300) -> None:
    """Wait until the fleet's datagrams are all in the series table, the sampled devices' all in the archive, and
    every queue is empty."""
    progress = {"seen": None, "since": time.monotonic()}
    sampled = set(probe.devices)
    archive_due = [k for k in sent if k[0] in sampled]

    def done() -> bool:
        count = measure.stored_count(stack.dsn, fleet.prefix)
        archived = probe.lines()
        backlog = sampler.samples[-1].backlog if sampler.samples else {}
        seen = (count, len(archived), sum(backlog.values()))
        if seen != progress["seen"]:
            progress.update(seen=seen, since=time.monotonic())
        # Queue depths leave out messages a consumer holds unacknowledged, so the stores themselves say when
        # the series and archive writers are done.
        empty = bool(backlog) and not any(backlog.values())
        complete = count >= len(sent) and all(k in archived for k in archive_due)
        return (complete and empty) or time.monotonic() - progress["since"] > STALL_S

    wait_for(done, timeout=timeout, interval=1, what="pipeline drained")


def run_step(stack: Stack, sampler: Sampler, fleet: Fleet, duration: float, out: Path) -> dict:
    """Drive one fleet, wait for the pipeline to drain, and measure the step from what was stored."""
    env = stack.service_env()
    sampled = fleet.sample()
    probe = ArchiveProbe(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], env["S3_BUCKET"],
                         sampled).start()
    first_sample, cpu_before = len(sampler.samples), sampler.cpu_seconds()
    rows = simulate(stack.mqtt.port, stack.dsn, fleet, duration, out / f"ledger-{fleet.prefix}.csv")
    load_samples = len(sampler.samples)
    sent = summary.sent_telemetry(rows)
    drain(stack, sampler, fleet, sent, probe)
    cpu_after = sampler.cpu_seconds()
    archived = probe.stop()
    stored = measure.stored_series(stack.dsn, fleet.prefix)
    series = summary.series_outcome(sent, stored)
    backlogs = [s.backlog for s in sampler.samples[first_sample:load_samples]]
    step = {"target": fleet.rate, "devices": fleet.devices, "duration_s": duration, "warmup_s": fleet.warmup,
            "first_publish": min(sent.values(), default=None),  # None: nothing sent (the fleet never connected)
            **summary.rates(summary.steady(sent, fleet.warmup), stored, probe.first_seen),
            "series": series, "archive": summary.archive_outcome(sent, sampled, probe.first_seen, archived),
            "events": summary.event_outcome(rows, measure.stored_events(stack.dsn, fleet.prefix)),
            "growing": summary.growing_queues(backlogs, tolerance=fleet.rate),
            "peak_backlog": max((sum(b.values()) for b in backlogs), default=0),
            "cpu_s_per_1000": summary.cpu_per_1000(cpu_before, cpu_after, series["stored"])}
    step["reasons"] = summary.verdict(step)
    p99 = series["latency_ms"].get("p99")
    print(f"step {fleet.rate:.0f}/s: offered {step['offered_per_s']:.0f}/s, delivered {step['delivered_per_s']:.0f}/s, "
          f"p99 {'n/a' if p99 is None else f'{p99:.0f} ms'}, lost {series['lost']}, "
          f"{'; '.join(step['reasons']) or 'sustained'}", flush=True)
    return {"step": step, "sent": sent, "stored": stored}


def run(stack: Stack, sampler: Sampler, fleets: list[Fleet], duration: float, out: Path,
        keep_going: bool = False) -> dict:
    """Run the fleets' steps in order, stopping after the first that is not sustained unless `keep_going`."""
    steps, sent, stored = [], {}, {}
    for fleet in fleets:
        measured = run_step(stack, sampler, fleet, duration, out)
        steps.append(measured["step"])
        sent.update(measured["sent"])
        stored.update(measured["stored"])
        if measured["step"]["reasons"] and not keep_going:
            break
    return {"steps": steps, "sent": sent, "stored": stored}
