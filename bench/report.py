"""Write a benchmark run as JSON, a Markdown summary and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

from bench.sampler import Sample, peak


def write(outdir: Path, result: dict, samples: list[Sample], timeline: list[dict]) -> dict[str, Path]:
    """Write report.json, report.md and the plots; return their paths."""
    outdir.mkdir(parents=True, exist_ok=True)
    result = {**result, "cpu_median_pct": peak(samples, "cpu"), "rss_peak_mb": peak(samples, "rss_mb")}
    paths = {"json": outdir / "report.json", "md": outdir / "report.md"}
    paths["json"].write_text(json.dumps({**result, "timeline": timeline,
                                         "samples": [s.__dict__ for s in samples]}, indent=2, default=str))
    paths["md"].write_text(markdown(result))
    paths.update(plot(outdir, samples, timeline))
    return paths


def _ms(d: dict) -> str:
    return " / ".join(f"{d[k]:.0f}" for k in ("p50", "p95", "p99", "max") if k in d) or "n/a"


def markdown(r: dict) -> str:
    """The human summary: rates beside the baseline, latencies, loss, CPU and RSS."""
    base = r.get("baseline_msgs_per_s") or 0
    rate = r.get("msgs_per_s") or 0
    lines = [
        f"# Benchmark {r.get('started_at', '')}",
        "",
        f"Command: `{r.get('command', 'make bench')}`  ",
        f"Workload: {r.get('workload', '')}",
        "",
        "| figure | value |",
        "|---|---|",
        f"| bare paho QoS 1 subscriber (baseline, same broker, same run) | {base:,.0f} msg/s |",
        f"| end-to-end sustained (published and stored) | {rate:,.0f} msg/s, "
        f"{r.get('measurements_per_s', 0):,.0f} measurements/s |",
        f"| ratio to baseline | {rate / base:.2f} |" if base else "| ratio to baseline | n/a |",
        f"| publish -> series row, ms (p50 / p95 / p99 / max) | {_ms(r.get('series', {}).get('latency_ms', {}))} |",
        f"| publish -> archived (sampled devices, +-0.5 s), ms | "
        f"{_ms(r.get('archive', {}).get('latency_ms', {}))} |",
        f"| publish -> event row (breaching reading), ms | "
        f"{_ms(r.get('events', {}).get('publish_to_event_ms', {}))} |",
        f"| publish -> notification attempt recorded, ms | "
        f"{_ms(r.get('events', {}).get('publish_to_notification_ms', {}))} |",
        f"| published / stored / lost / duplicated | {r.get('series', {}).get('published', 0)} / "
        f"{r.get('series', {}).get('stored', 0)} / {r.get('series', {}).get('lost', 0)} / "
        f"{r.get('series', {}).get('duplicated', 0)} |",
        f"| events opened | {r.get('events', {}).get('events', 0)} |",
        f"| peak backlog, all queues (messages) | {r.get('peak_backlog', 0)} |",
        f"| archive backlog at the end | {r.get('archive_backlog_end', 0)} |",
        "",
        "| process | median CPU % | peak RSS MiB |",
        "|---|---|---|",
    ]
    for name in sorted(r.get("rss_peak_mb", {})):
        lines.append(f"| {name} | {r['cpu_median_pct'].get(name, 0):.0f} | {r['rss_peak_mb'][name]:.0f} |")
    if r.get("ramp"):
        lines += ["", "Ramp steps:", "", "| target msg/s | achieved | p99 ms | backlog growing | verdict |",
                  "|---|---|---|---|---|"]
        for step in r["ramp"]:
            lines.append(f"| {step['target']} | {step['achieved']:.0f} | {step['p99_ms']:.0f} | "
                         f"{step['backlog_growing']} | {'ok' if step['ok'] else 'over'} |")
    return "\n".join(lines) + "\n"


def plot(outdir: Path, samples: list[Sample], timeline: list[dict]) -> dict[str, Path]:
    """Throughput and backlog over time, and latency over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    fig, ax = plt.subplots(figsize=(9, 4))
    if timeline:
        ax.plot([t["t"] for t in timeline], [t["stored_per_s"] for t in timeline], label="stored msg/s")
        ax.plot([t["t"] for t in timeline], [t["published_per_s"] for t in timeline], label="published msg/s")
    ax2 = ax.twinx()
    ax2.plot([s.t for s in samples], [sum(s.backlog.values()) for s in samples], "r:", label="backlog (all queues)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("messages/s")
    ax2.set_ylabel("queued messages")
    ax.legend(loc="upper left")
    ax2.legend(loc="upper right")
    fig.tight_layout()
    paths["throughput"] = outdir / "throughput.png"
    fig.savefig(paths["throughput"])
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 4))
    if timeline:
        ax.plot([t["t"] for t in timeline], [t.get("p99_ms", 0) for t in timeline], label="p99 publish->stored")
        ax.plot([t["t"] for t in timeline], [t.get("p50_ms", 0) for t in timeline], label="p50 publish->stored")
    ax.set_xlabel("seconds")
    ax.set_ylabel("ms")
    ax.legend()
    fig.tight_layout()
    paths["latency"] = outdir / "latency.png"
    fig.savefig(paths["latency"])
    plt.close(fig)
    return paths
