"""Write a benchmark run as JSON, a Markdown summary and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

from bench import plots
from bench.sampler import Sample, peak

SHARED = ("rabbitmq", "postgresql")  # the machine's servers: their CPU includes whatever else uses them meanwhile


def write(outdir: Path, result: dict, samples: list[Sample], timeline: list[dict],
          sample_offset: float = 0.0) -> dict[str, Path]:
    """Write report.json, report.md and the plots; return their paths."""
    outdir.mkdir(parents=True, exist_ok=True)
    result = {**result, "cpu_median_pct": peak(samples, "cpu"), "rss_peak_mb": peak(samples, "rss_mb")}
    paths = {"json": outdir / "report.json", "md": outdir / "report.md"}
    paths["json"].write_text(json.dumps({**result, "timeline": timeline,
                                         "samples": [s.__dict__ for s in samples]}, indent=2, default=str))
    paths["md"].write_text(markdown(result))
    paths.update(plots.write(outdir, result["steps"], samples, timeline, sample_offset))
    return paths


def _ms(d: dict) -> str:
    return " / ".join(f"{d[k]:,.0f}" for k in ("p50", "p95", "p99", "max") if k in d) or "n/a (none measured)"


def _pct(d: dict, key: str) -> str:
    return f"{d[key]:,.0f}" if key in d else "n/a"


def _headline_rows(r: dict) -> list[str]:
    head, base = r["headline"], r.get("baseline_msgs_per_s") or 0
    step = head["step"]
    if step is None:
        return ["| end to end | no step ran |"]
    where = f"step {step['target']:,.0f}/s offered, {step['devices']:,} devices"
    if head["sustained"]:
        rate = f"**{head['msgs_per_s']:,.0f} msg/s**, {head['data_points_per_s']:,.0f} data points/s ({where})"
    else:
        rate = (f"not sustained even at the lowest step ({'; '.join(step['reasons'])}); measured there: "
                f"{head['msgs_per_s']:,.0f} msg/s, {head['data_points_per_s']:,.0f} data points/s ({where})")
    ratio = f"{head['ratio']:.3f}" if head["ratio"] is not None else "n/a (no baseline)"
    series, archive, events = step["series"], step["archive"], step["events"]
    rows = [
        f"| bare paho QoS 1 subscriber (baseline, same broker, same run) | {base:,.0f} msg/s |",
        f"| end-to-end sustained (publish -> series row, archive, rule engine) | {rate} |",
        f"| ratio to baseline | {ratio} |",
    ]
    if r.get("reference"):
        rows.append(f"| reference (not this machine) | {r['reference']} |")
    return [
        *rows,
        f"| publish -> series row, ms (p50 / p95 / p99 / max) | {_ms(series['latency_ms'])} |",
        f"| publish -> archived ({archive['devices']} sampled devices, +-0.5 s), ms | "
        f"{_ms(archive['latency_ms'])} |",
        f"| publish -> event row (breaching reading), ms | {_ms(events['publish_to_event_ms'])} |",
        f"| publish -> notification attempt recorded, ms | {_ms(events['publish_to_notification_ms'])} |",
        f"| series: published / stored once / lost / duplicated | {series['published']:,} / "
        f"{series['stored'] - series['duplicated']:,} / {series['lost']:,} / {series['duplicated']:,} |",
        f"| archive, sampled devices: published / lost / duplicated | {archive['published']:,} / "
        f"{archive['lost']:,} / {archive['duplicated']:,} |",
        f"| events opened | {events['events']:,} |",
        f"| peak backlog while loading, all queues (messages) | {step['peak_backlog']:,} |",
    ]


def _step_rows(r: dict) -> list[str]:
    dp = r.get("data_points_per_msg", 0)
    lines = ["| offered target msg/s | devices | offered | delivered | data points/s | p50 ms | p99 ms | "
             "lost / dup | archive lost / dup | verdict |", "|---:|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for s in r["steps"]:
        se, ar = s["series"], s["archive"]
        lines.append(f"| {s['target']:,.0f} | {s['devices']:,} | {s['offered_per_s']:,.0f} | "
                     f"{s['delivered_per_s']:,.0f} | {s['delivered_per_s'] * dp:,.0f} | "
                     f"{_pct(se['latency_ms'], 'p50')} | {_pct(se['latency_ms'], 'p99')} | "
                     f"{se['lost']} / {se['duplicated']} | {ar['lost']} / {ar['duplicated']} | "
                     f"{'; '.join(s['reasons']) or 'sustained'} |")
    return lines


def _cpu_rows(r: dict) -> list[str]:
    steps = r["steps"]
    names = sorted({n for s in steps for n in s["cpu_s_per_1000"]} | set(r.get("rss_peak_mb", {})))
    head = " | ".join(f"CPU s / 1,000 msg at {s['target']:,.0f}/s" for s in steps)
    lines = [f"| process | {head} | median CPU % | peak RSS MiB |", "|---|" + "---:|" * (len(steps) + 2)]
    for n in names:
        per = " | ".join(f"{s['cpu_s_per_1000'][n]:.2f}" if n in s["cpu_s_per_1000"] else "n/a" for s in steps)
        label = f"{n} (shared server)" if n in SHARED else n
        lines.append(f"| {label} | {per} | {r.get('cpu_median_pct', {}).get(n, 0):.0f} | "
                     f"{r.get('rss_peak_mb', {}).get(n, 0):.0f} |")
    return lines


def markdown(r: dict) -> str:
    """The human summary: the headline beside the baseline, every step, and CPU per process."""
    return "\n".join([
        f"# Benchmark {r.get('started_at', '')}",
        "",
        f"Command: `{r.get('command', 'make bench')}`  ",
        f"Mode: {r.get('mode', '')}, profile: {r.get('profile', '')}  ",
        f"Workload: {r.get('workload', '')}  ",
        f"Machine: {r.get('machine', '')}; brokers, database, services, simulators and baseline share it",
        "",
        "| figure | value |",
        "|---|---|",
        *_headline_rows(r),
        "",
        "Steps (offered and delivered msg/s exclude each step's warm-up; delivered = stored / (first publish -> the "
        "last of them in the series table or, for the sampled devices, in the archive)):",
        "",
        *_step_rows(r),
        "",
        "CPU per process the benchmark sampled (with its children), per 1,000 messages stored, from the step's "
        "first publish to its drain; shared servers include other users' work:",
        "",
        *_cpu_rows(r),
    ]) + "\n"
