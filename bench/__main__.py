"""`make bench`: the real stack end to end, beside a bare paho QoS 1 subscriber measured in the same run."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import measure, report
from bench.archive_probe import ArchiveProbe
from bench.ingest import bench_bare
from bench.sampler import Sampler
from bench.stack import Stack
from tests.support.poll import wait_for

ROOT = Path(__file__).resolve().parents[1]
SIM_RATE_PER_PROCESS = 3000  # one simulator process tops out near 5,700 telemetry/s on this machine


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (BENCH_ARGS in the Makefile)."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--mode", choices=("fixed", "ramp"), default="fixed")
    p.add_argument("--rate", type=float, default=1000, help="telemetry datagrams/s in fixed mode")
    p.add_argument("--rates", default="500,1000,2000,3000,4000,6000", help="ramp steps, datagrams/s")
    p.add_argument("--duration", type=float, default=60, help="seconds of load (per step in ramp mode)")
    p.add_argument("--send-interval", type=float, default=10, help="seconds between a device's datagrams")
    p.add_argument("--samples", type=int, default=10, help="samples of each metric per datagram")
    p.add_argument("--baseline-messages", type=int, default=60000)
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def _sim_args(stack: Stack, prefix: str) -> list[str]:
    return ["--mqtt-port", str(stack.mqtt.port), "--id-prefix", prefix, "--database-url", stack.dsn,
            "--metrics-port", "0", "--log-level", "WARNING"]


def provision(stack: Stack, prefix: str, rate: float, args) -> None:
    """Register the fleet of one load phase (before the services start, as an installed fleet would be)."""
    devices = max(1, int(rate * args.send_interval))
    subprocess.run([sys.executable, "-m", "simulator", "provision", "--devices", str(devices),
                    *_sim_args(stack, prefix)], check=True)


def simulate(stack: Stack, prefix: str, rate: float, args, ledger: Path) -> None:
    """Run simulator processes driving rate x interval devices for the duration."""
    devices = max(1, int(rate * args.send_interval))
    for old in ledger.parent.glob(ledger.name + ".*"):  # the simulator appends; never mix two runs
        old.unlink()
    sim = [sys.executable, "-m", "simulator"]
    common = _sim_args(stack, prefix)
    processes = max(1, math.ceil(rate / SIM_RATE_PER_PROCESS))
    per_proc = math.ceil(devices / processes)
    procs = []
    for i in range(processes):
        count = min(per_proc, devices - i * per_proc)
        procs.append(subprocess.Popen([
            *sim, "run", *common, "--devices", str(count), "--start-index", str(i * per_proc),
            "--rate", str(rate / processes), "--duration", str(args.duration),
            "--sampling-interval", str(args.send_interval / args.samples),
            "--samples-per-datagram", str(args.samples), "--ramp", str(args.send_interval),
            "--ledger", f"{ledger}.{i}"]))
    for proc in procs:
        proc.wait(args.duration + 120)


def read_ledgers(ledger: Path) -> list[measure.LedgerRow]:
    """All per-process ledgers of one load phase."""
    rows = []
    for part in sorted(ledger.parent.glob(ledger.name + ".*")):
        rows += measure.read_ledger(part)
    return rows


def seed_rules(stack: Stack) -> None:
    """A realistic rule set: a few percent of readings breach; every event notifies through the log channel."""
    import psycopg2

    conn = psycopg2.connect(stack.dsn)
    with conn, conn.cursor() as cur:
        cur.execute("""INSERT INTO rules (name, scope, device_type, metric, operator, threshold, severity) VALUES
            ('DC overvoltage', 'device_type', 'power_meter_dc', 'voltage_dc', 'gt', 795, 'warning'),
            ('AC overfrequency', 'device_type', 'power_meter_ac', 'frequency', 'gt', 50.09, 'warning'),
            ('AC low power factor', 'device_type', 'power_meter_ac', 'pf', 'lt', 0.921, 'info')""")
        cur.execute("INSERT INTO subscriptions (name, channel, target, min_severity) "
                    "VALUES ('bench log', 'log', 'bench', 'info')")
    conn.close()


def drain(stack: Stack, sampler: Sampler, rows: list[measure.LedgerRow], timeout: float = 300) -> None:
    """Wait until every published datagram is stored and every queue is empty, or the store stops progressing."""
    import psycopg2

    published = sum(1 for r in rows if r.msg_type == "telemetry")
    progress = {"count": -1, "since": time.monotonic()}

    def done() -> bool:
        conn = psycopg2.connect(stack.dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM telemetry")
                count = cur.fetchone()[0]
        finally:
            conn.close()
        if count != progress["count"]:
            progress.update(count=count, since=time.monotonic())
        stalled = time.monotonic() - progress["since"] > 60  # report loss instead of waiting forever
        # The archive drains on its own (reported as its backlog); the figures wait for series, rules, notifications.
        backlog = sampler.samples[-1].backlog if sampler.samples else {}
        empty = bool(sampler.samples) and all(n == 0 for q, n in backlog.items() if q != "collector.archive")
        return (count >= published and empty) or stalled

    wait_for(done, timeout=timeout, interval=1, what="pipeline drained")


def run_fixed(stack: Stack, args, out: Path, sampler: Sampler) -> dict:
    """One load phase at a fixed rate."""
    ledger = out / "ledger.csv"
    t0 = time.time()
    env = stack.service_env()
    probe = ArchiveProbe(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], env["S3_BUCKET"],
                         [f"bench-{i:06d}" for i in range(0, 200, 20)])
    probe.start()
    simulate(stack, "bench", args.rate, args, ledger)
    rows = read_ledgers(ledger)
    drain(stack, sampler, rows)
    probe.interval = 0  # one last look, then stop
    time.sleep(1)  # let the probe's final pass finish; a bounded pause of the benchmark, not a test
    archive = measure.archive_outcome(probe.stop(), rows)
    series = measure.series_outcome(stack.dsn, rows)
    telemetry = [r.publish_ts for r in rows if r.msg_type == "telemetry"]
    elapsed = max(1.0, max(telemetry, default=t0) - min(telemetry, default=t0))
    stored = series["stored"] - series["duplicated"]
    return {"series": series, "archive": archive, "events": measure.event_outcome(stack.dsn, rows),
            "msgs_per_s": stored / elapsed,
            "measurements_per_s": stored / elapsed * args.samples * 4.5,  # 3 DC / 6 AC metrics, 1:1 mix
            "timeline": measure.timeline(stack.dsn, rows, t0)}


def run_ramp(stack: Stack, args, out: Path, sampler: Sampler) -> dict:
    """Step the rate up until the backlog grows or p99 passes 1 s; the last good step is the sustained rate."""
    steps, best = [], None
    for i, rate in enumerate(float(r) for r in args.rates.split(",")):
        ledger = out / f"ledger-step{i}.csv"
        before = len(sampler.samples)
        simulate(stack, f"ramp{i}", rate, args, ledger)
        window = sampler.samples[before:]
        backlog = [sum(n for q, n in s.backlog.items() if q != "collector.archive") for s in window]
        growing = len(backlog) > 4 and min(backlog[-3:]) > max(backlog[: len(backlog) // 2] or [0]) + rate
        rows = read_ledgers(ledger)
        drain(stack, sampler, rows)
        series = measure.series_outcome(stack.dsn, rows)
        span = max(1.0, max(r.publish_ts for r in rows) - min(r.publish_ts for r in rows)) if rows else 1.0
        p99 = series["latency_ms"].get("p99", math.inf)
        step = {"target": rate, "achieved": series["published"] / span, "p99_ms": p99,
                "backlog_growing": growing, "lost": series["lost"], "ok": (not growing and p99 < 1000
                                                                           and series["lost"] == 0)}
        steps.append(step)
        print(f"ramp step {rate:.0f}/s: achieved {step['achieved']:.0f}/s p99 {p99:.0f} ms "
              f"growing={growing} lost={series['lost']}", flush=True)
        if not step["ok"]:
            break
        best = (step, series, rows)
    result = {"ramp": steps, "timeline": []}
    if best:
        step, series, rows = best
        result.update(series=series, events=measure.event_outcome(stack.dsn, rows), msgs_per_s=step["achieved"],
                      measurements_per_s=step["achieved"] * args.samples * 4.5)
    return result


def main(argv: list[str] | None = None) -> int:
    """Baseline, then the platform, then the report."""
    args = parse_args(argv)
    started = datetime.now(UTC)
    out = (args.out or ROOT / "bench" / "out" / started.strftime("%Y%m%dT%H%M%SZ")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stack = Stack(out / "stack")
    try:
        stack.start_infra()
        baseline = bench_bare(stack.mqtt.port, [f"base-{i}" for i in range(100)],
                              args.baseline_messages // 100, publishers=2)
        print(f"baseline bare paho QoS 1 subscriber: {baseline['rate']:,.0f} msg/s", flush=True)
        seed_rules(stack)
        if args.mode == "fixed":
            provision(stack, "bench", args.rate, args)
        else:
            for i, rate in enumerate(float(r) for r in args.rates.split(",")):
                provision(stack, f"ramp{i}", rate, args)
        stack.start_services()
        sampler = Sampler(stack.processes(), stack.amqp_url).start()
        result = (run_fixed if args.mode == "fixed" else run_ramp)(stack, args, out, sampler)
        samples = sampler.stop()
        timeline = result.pop("timeline", [])
        result.update(started_at=started.isoformat(), command="make bench BENCH_ARGS='" + " ".join(
            sys.argv[1:] if argv is None else argv) + "'", baseline_msgs_per_s=baseline["rate"],
            peak_backlog=max((sum(s.backlog.values()) for s in samples), default=0),
            archive_backlog_end=samples[-1].backlog.get("collector.archive", 0) if samples else 0,
            workload=(f"{args.mode}, datagram every {args.send_interval:g} s per device with {args.samples} samples "
                      f"of each metric, DC/AC 1:1, 3 threshold rules, log notifications"))
        paths = report.write(out, result, samples, timeline)
        print(paths["md"].read_text())
        print(f"report: {out}")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
