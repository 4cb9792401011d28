"""PNG plots of a benchmark run: throughput and queues over time, latency over time, and the load steps."""

from __future__ import annotations

from pathlib import Path

from bench.sampler import Sample


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on a build machine
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.clf()
    return path


def write(outdir: Path, steps: list[dict], samples: list[Sample], timeline: list[dict],
          sample_offset: float) -> dict[str, Path]:
    """throughput.png, latency.png and steps.png; time is seconds since the run's first publish."""
    plt = _pyplot()
    t = [p["t"] for p in timeline]
    paths = {}

    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(t, _mean([p["published_per_s"] for p in timeline]), label="published (datagrams/s, 5 s mean)")
    ax.plot(t, _mean([p["stored_per_s"] for p in timeline]), label="stored in series (datagrams/s, 5 s mean)")
    ax.set(xlabel="time since first publish (s)", ylabel="datagrams per second",
           title="Throughput and queue depth")
    ax2 = ax.twinx()
    for q in sorted({q for s in samples for q, n in s.backlog.items() if n}):  # queues that never filled: no line
        ax2.plot([s.t + sample_offset for s in samples], [s.backlog.get(q, 0) for s in samples], ":",
                 label=f"{q} (queued)")
    ax2.set_ylabel("messages ready in RabbitMQ queue")
    ax.set_xlim(left=-2)  # the sampler starts before the load; its idle lead-in says nothing
    ax.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    _steps(ax, steps)
    _legend(ax, ax2)
    paths["throughput"] = _save(fig, outdir / "throughput.png")

    fig, ax = plt.subplots(figsize=(10, 4.5))
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        points = [(p["t"], p[key]) for p in timeline if p[key] is not None]
        ax.plot([x for x, _ in points], [y for _, y in points], marker=".", label=f"{label} publish -> series row")
    ax.axhline(1000, color="grey", linestyle="--", label="1 s (p99 bar)")
    ax.set_yscale("log")
    ax.set(xlabel="second of publish since first publish (s)", ylabel="latency (ms, log scale)",
           title="Publish -> series row latency, by the second the datagram was published")
    _steps(ax, steps)
    ax.legend(loc="upper left", fontsize="small")
    paths["latency"] = _save(fig, outdir / "latency.png")

    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    x = [s["target"] for s in steps]
    ax.plot(x, x, color="grey", linestyle="--", label="target")
    ax.plot(x, [s["offered_per_s"] for s in steps], marker="o", label="offered")
    ax.plot(x, [s["delivered_per_s"] for s in steps], marker="o", label="delivered end to end")
    ax.set(ylabel="datagrams per second", title="Load steps (after warm-up)")
    ax.legend(loc="upper left", fontsize="small")
    ax2.plot(x, [s["series"]["latency_ms"].get("p99", float("nan")) for s in steps], marker="^", color="red",
             label="p99 publish -> series row")
    ax2.axhline(1000, color="grey", linestyle="--", label="1 s (p99 bar)")
    ax2.set(xlabel="target datagrams/s of the step", ylabel="latency (ms)")
    ax2.legend(loc="upper left", fontsize="small")
    paths["steps"] = _save(fig, outdir / "steps.png")
    plt.close("all")
    return paths


def _mean(values: list[float], width: int = 5) -> list[float]:
    """Trailing mean over `width` seconds: writers store in batches, so single seconds swing widely."""
    return [sum(values[max(0, i - width + 1): i + 1]) / len(values[max(0, i - width + 1): i + 1])
            for i in range(len(values))]


def _steps(ax, steps: list[dict]) -> None:
    """Mark where each step's load began."""
    for s in steps:
        ax.axvline(s["t_start"], color="lightgrey", linewidth=1)
        ax.annotate(f"step {s['target']:,.0f}/s", (s["t_start"], 0), xycoords=("data", "axes fraction"),
                    xytext=(3, 4), textcoords="offset points", fontsize="small", color="grey")


def _legend(ax, ax2) -> None:
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = ax2.get_legend_handles_labels()
    ax.legend(lines + more, labels + more_labels, loc="upper left", fontsize="small")
