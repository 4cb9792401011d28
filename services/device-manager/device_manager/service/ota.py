"""OTA rollout summaries from per-device states."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

OTA_STATES = ("pending", "downloading", "verifying", "applying", "success", "failed")
FINISHED = ("success", "failed")


def summarise(counts: Mapping[str, int], progress: Iterable[tuple[float, int]] = ()) -> dict[str, object]:
    """{total, states, finished, complete, success_pct, progress_pct} from state counts and (mean, n) pairs."""
    states = {s: int(counts.get(s, 0)) for s in OTA_STATES}
    total = sum(states.values())
    finished = states["success"] + states["failed"]
    pairs = list(progress)
    weight = sum(n for _, n in pairs)
    return {
        "total": total,
        "states": states,
        "finished": finished,
        "complete": total > 0 and finished == total,
        "success_pct": round(100.0 * states["success"] / total, 1) if total else 0.0,
        "progress_pct": round(sum(mean * n for mean, n in pairs) / weight, 1) if weight else 0.0,
    }
