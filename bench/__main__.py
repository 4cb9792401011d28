"""`make bench`: the real stack end to end, beside a bare paho QoS 1 subscriber measured in the same run."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import load, modes, report, summary
from bench.ingest import bench_bare
from bench.profiles import PROFILES
from bench.sampler import Sampler
from bench.stack import Stack
from tests.support.services import PLATFORM, STAGED_PLATFORM

ROOT = Path(__file__).resolve().parents[1]


def _rates(text: str) -> list[float]:
    rates = [float(r) for r in text.split(",") if r.strip()]
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("a comma-separated list of positive rates, e.g. 200,400,800")
    return rates


def parser() -> argparse.ArgumentParser:
    """Command-line options (BENCH_ARGS in the Makefile)."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--mode", choices=("fixed", "ramp"), default="fixed",
                   help="fixed: one load step at --rate; ramp: a step per --rates entry, stopping after the first "
                        "step that is not sustained (p99 >= 1 s, any loss or duplicate, or a growing queue); "
                        "default %(default)s")
    p.add_argument("--profile", choices=sorted(PROFILES), default="default",
                   help="device shape: " + "; ".join(f"{n}: {pr.description}" for n, pr in PROFILES.items())
                        + "; default %(default)s")
    p.add_argument("--rate", type=float, default=1000,
                   help="fixed mode: datagrams/s the fleet offers; default %(default)g")
    p.add_argument("--rates", type=_rates, default="500,1000,2000,3000,4000,6000",
                   help="ramp mode: comma-separated datagrams/s, one step each, lowest first; default %(default)s")
    p.add_argument("--duration", type=float, default=60,
                   help="seconds of load per step; the first send interval + 1 s is warm-up and not in the rates; "
                        "default %(default)g")
    p.add_argument("--send-interval", type=float, default=None,
                   help="seconds between one device's datagrams (devices = rate x interval); default: the profile's")
    p.add_argument("--samples", type=int, default=None,
                   help="samples of each metric per datagram; default: the profile's")
    p.add_argument("--collector", choices=("stages", "one-process"), default="stages",
                   help="stages: one process per collector stage, as `make run` starts them; one-process: every "
                        "stage in one `python -m collector` (the shape before the stage split); default stages")
    p.add_argument("--no-derive", action="store_true",
                   help="run with METERING_DERIVE=false: no derived power published with accepted telemetry (the "
                        "energy writer then derives it from the body), to measure what derivation costs")
    p.add_argument("--keep-going", action="store_true",
                   help="ramp mode: run every step even after one is not sustained (the headline stays the last "
                        "sustained step of the unbroken run from the first)")
    p.add_argument("--baseline-messages", type=int, default=60000,
                   help="QoS 1 messages for the bare paho subscriber baseline (100 devices, 2 publishers); "
                        "default %(default)s")
    p.add_argument("--out", type=Path, default=None,
                   help="report directory; default bench/out/<UTC timestamp>")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parsed options, the profile's send interval and samples filled in where not given."""
    args = parser().parse_args(argv)
    profile = PROFILES[args.profile]
    args.send_interval = args.send_interval or profile.send_interval
    args.samples = args.samples or profile.samples
    return args


def fleets(args: argparse.Namespace) -> list[load.Fleet]:
    """One fleet per load step, each with its own devices so every step starts from a clean ledger."""
    rates = [args.rate] if args.mode == "fixed" else args.rates
    return [load.Fleet(f"{args.mode}{i}", rate, PROFILES[args.profile], args.send_interval, args.samples)
            for i, rate in enumerate(rates)]


def main(argv: list[str] | None = None) -> int:
    """Baseline, then the platform's load steps, then the report."""
    args = parse_args(argv)
    profile = PROFILES[args.profile]
    started = datetime.now(UTC)
    out = (args.out or ROOT / "bench" / "out" / started.strftime("%Y%m%dT%H%M%SZ")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stack = Stack(out / "stack", derive=not args.no_derive)
    try:
        stack.start_infra()
        baseline = bench_bare(stack.mqtt.port, True, [f"base-{i}" for i in range(100)],
                              args.baseline_messages // 100, publishers=2)
        print(f"baseline bare paho QoS 1 subscriber: {baseline['rate']:,.0f} msg/s", flush=True)
        load.seed_rules(stack.dsn)
        steps = fleets(args)
        for fleet in steps:
            load.provision(stack.mqtt.port, stack.dsn, fleet)
        stack.start_services(STAGED_PLATFORM if args.collector == "stages" else PLATFORM)
        sampler = Sampler(stack.processes(), stack.amqp_url).start()
        measured = modes.run(stack, sampler, steps, args.duration, out, args.keep_going)
        samples = sampler.stop()
        data_points = profile.data_points(args.samples)
        result = {
            "started_at": started.isoformat(), "mode": args.mode, "profile": profile.name,
            "command": "make bench BENCH_ARGS='" + " ".join(sys.argv[1:] if argv is None else argv) + "'",
            "workload": (f"{profile.description}; this run: a datagram every {args.send_interval:g} s per device, "
                         f"{args.samples} sample(s) of each metric ({data_points:g} data points per datagram), "
                         "3 threshold rules, log notifications"),
            "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
            "reference": profile.reference, "data_points_per_msg": data_points,
            "baseline_msgs_per_s": baseline["rate"], "steps": measured["steps"],
            "headline": summary.headline(measured["steps"], baseline["rate"], data_points)}
        t0 = min(measured["sent"].values(), default=sampler.wall0)
        for step in result["steps"]:
            first = step.pop("first_publish", None)
            step["t_start"] = (t0 if first is None else first) - t0
        timeline = summary.timeline(measured["sent"], measured["stored"], t0)
        paths = report.write(out, result, samples, timeline, sample_offset=sampler.wall0 - t0)
        print(paths["md"].read_text())
        print(f"report: {out}")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
