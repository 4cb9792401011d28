"""The benchmark's report logic on hand-made ledgers and stores: exact values, no servers, no clocks."""

from __future__ import annotations

import pytest

from bench import summary
from bench.measure import LedgerRow


def _sent(n: int, start: float = 1000.0, every: float = 0.1, device: str = "d-000000") -> dict:
    return {(device, seq): start + seq * every for seq in range(n)}


def test_percentiles_are_nearest_rank():
    assert summary.percentiles(range(1, 101)) == {"p50": 50, "p95": 95, "p99": 99, "max": 100}
    assert summary.percentiles([]) == {}


def test_series_outcome_counts_lost_and_duplicated_and_latency_of_stored_only():
    sent = _sent(4)  # publish times 1000.0, 1000.1, 1000.2, 1000.3
    stored = {("d-000000", 0): (1, 1000.05), ("d-000000", 1): (2, 1000.3), ("d-000000", 2): (1, 1000.4),
              ("other-000000", 0): (1, 1000.0)}  # another fleet's row is not this step's
    out = summary.series_outcome(sent, stored)
    assert {k: out[k] for k in ("published", "stored", "rows", "lost", "duplicated")} == \
        {"published": 4, "stored": 3, "rows": 4, "lost": 1, "duplicated": 1}
    assert out["latency_ms"]["p50"] == pytest.approx(200)
    assert out["latency_ms"]["max"] == pytest.approx(200)
    assert out["latency_ms"]["p95"] == pytest.approx(200)


def test_steady_drops_the_warmup_and_keeps_everything_when_the_step_is_all_warmup():
    sent = _sent(100, every=0.1)  # 10 s of sends
    assert len(summary.steady(sent, warmup=5.0)) == 50
    assert summary.steady(sent, warmup=60.0) == sent
    assert summary.steady({}, warmup=1.0) == {}


def test_rates_offered_over_publish_span_delivered_until_last_stored():
    sent = _sent(101, every=0.1)  # 101 sends over 10 s
    stored = {k: (1, ts + 0.5) for k, ts in sent.items()}
    out = summary.rates(sent, stored)
    assert out["offered_per_s"] == pytest.approx(10.1)
    assert out["delivered_per_s"] == pytest.approx(101 / 10.5)
    assert summary.rates(sent, {}) == {"offered_per_s": pytest.approx(10.1), "delivered_per_s": 0.0}
    archived = {("d-000000", 3): 1030.0}  # one sampled datagram reached the archive 20 s after the last publish
    assert summary.rates(sent, stored, archived)["delivered_per_s"] == pytest.approx(101 / 30)


def test_archive_outcome_judges_only_sampled_devices():
    sent = {**_sent(3, device="a-000000"), **_sent(3, device="a-000005")}
    lines = {("a-000000", 0): 1, ("a-000000", 1): 2}  # seq 2 missing, seq 1 twice
    seen = {("a-000000", 0): 1000.5}
    out = summary.archive_outcome(sent, ["a-000000"], seen, lines)
    assert out["published"] == 3
    assert (out["lost"], out["duplicated"]) == (1, 1)
    assert out["latency_ms"]["p50"] == pytest.approx(500)


def test_event_latency_counts_from_the_datagram_that_carried_the_sample():
    rows = [LedgerRow("d-1", 0, 1, "telemetry", 100.0), LedgerRow("d-1", 0, 2, "telemetry", 110.0),
            LedgerRow("d-1", 0, 0, "hello", 95.0)]
    events = [("d-1", 104.0, 110.2, 110.5),  # sampled at 104, sent at 110
              ("d-1", 120.0, 121.0, None)]  # sampled after the last send: no datagram to time it from
    out = summary.event_outcome(rows, events)
    assert out["events"] == 2
    assert out["publish_to_event_ms"] == pytest.approx({"p50": 200, "p95": 200, "p99": 200, "max": 200})
    assert out["publish_to_notification_ms"]["p50"] == pytest.approx(500)


def test_growing_queues_names_only_the_queue_that_kept_growing():
    backlogs = [{"series": 5, "archive": 10 * i} for i in range(10)]
    assert summary.growing_queues(backlogs, tolerance=20) == ["archive"]
    assert summary.growing_queues(backlogs, tolerance=100) == []
    assert summary.growing_queues(backlogs[:4], tolerance=0) == []  # too short to call a trend


def test_cpu_per_1000_messages_per_named_process():
    out = summary.cpu_per_1000({"edge": 10.0, "writer": 2.0}, {"edge": 13.0, "writer": 2.5, "new": 1.0}, 2000)
    assert out == pytest.approx({"edge": 1.5, "writer": 0.25, "new": 0.5})
    assert summary.cpu_per_1000({}, {"edge": 1.0}, 0) == {}


def _step(target, delivered, p99=100.0, lost=0, dup=0, archive_lost=0, growing=()):
    step = {"target": target, "devices": int(target * 10), "delivered_per_s": delivered, "growing": list(growing),
            "series": {"lost": lost, "duplicated": dup, "latency_ms": {"p99": p99} if p99 is not None else {}},
            "archive": {"lost": archive_lost, "duplicated": 0}}
    step["reasons"] = summary.verdict(step)
    return step


def test_verdict_lists_every_reason_a_step_falls_short():
    assert _step(100, 95).get("reasons") == []
    assert _step(100, 95, p99=1000.0, lost=2, archive_lost=1, growing=["collector.archive"])["reasons"] == [
        "p99 1000 ms >= 1000 ms", "series lost 2, duplicated 0", "archive (sampled) lost 1, duplicated 0",
        "backlog growing: collector.archive"]
    assert _step(100, 0, p99=None)["reasons"] == ["nothing stored"]


def test_sustained_is_the_last_good_step_before_the_first_bad_one():
    steps = [_step(100, 97), _step(200, 190), _step(400, 300, p99=2500), _step(800, 700)]
    assert summary.sustained(steps)["target"] == 200
    assert summary.sustained([_step(100, 50, p99=3000)]) is None
    assert summary.sustained([]) is None


def test_headline_reports_the_sustained_step_and_its_ratio():
    head = summary.headline([_step(100, 97), _step(200, 190), _step(400, 300, p99=2500)], 5000, 45)
    assert head["sustained"] is True
    assert head["step"]["target"] == 200
    assert head["msgs_per_s"] == 190
    assert head["data_points_per_s"] == 190 * 45
    assert head["ratio"] == pytest.approx(0.038)


def test_headline_still_reports_what_was_measured_when_no_step_is_sustained():
    # The ramp bug of issue 10: a first step over the bar left the summary at 0 msg/s and n/a.
    head = summary.headline([_step(200, 150, p99=1700)], 6000, 3)
    assert head["sustained"] is False
    assert head["msgs_per_s"] == 150
    assert head["ratio"] == pytest.approx(0.025)
    assert summary.headline([], 6000, 3)["step"] is None
    assert summary.ratio(10, 0) is None


def test_timeline_buckets_sends_and_stores_by_second():
    sent = {("d", 0): 100.2, ("d", 1): 100.7, ("d", 2): 101.1}
    stored = {("d", 0): (1, 100.4), ("d", 1): (1, 101.7)}
    out = summary.timeline(sent, stored, t0=100.0)
    assert [(p["t"], p["published_per_s"], p["stored_per_s"]) for p in out] == [(0, 2, 1), (1, 1, 1)]
    assert out[0]["p50_ms"] == pytest.approx(200)
    assert out[0]["p99_ms"] == pytest.approx(1000)
    assert out[1]["p50_ms"] is None  # second 1's only send was never stored
    later = summary.timeline({("d", 0): 100.0, ("d", 1): 103.5}, {}, t0=100.0)
    assert [p["published_per_s"] for p in later] == [1, 0, 0, 1]  # the idle seconds between steps are zeros
