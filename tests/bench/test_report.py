"""The benchmark's Markdown summary, profiles and command line, from hand-made results."""

from __future__ import annotations

import argparse

from bench import report, summary
from bench.__main__ import parse_args, parser
from bench.load import Fleet
from bench.profiles import PROFILES


def _step(target: float, delivered: float, p99: float) -> dict:
    step = {"target": target, "devices": int(target * 10), "offered_per_s": target * 0.98,
            "delivered_per_s": delivered, "growing": [], "peak_backlog": 40,
            "series": {"published": 2000, "stored": 2000, "lost": 0, "duplicated": 0,
                       "latency_ms": {"p50": 120.0, "p95": 300.0, "p99": p99, "max": p99 + 10}},
            "archive": {"devices": 10, "published": 20, "lost": 0, "duplicated": 0, "latency_ms": {"p50": 700.0}},
            "events": {"events": 7, "publish_to_event_ms": {"p50": 90.0}, "publish_to_notification_ms": {}},
            "cpu_s_per_1000": {"edge": 1.25, "rabbitmq": 0.5}}
    step["reasons"] = summary.verdict(step)
    return step


def _result(steps: list[dict]) -> dict:
    return {"mode": "ramp", "profile": "default", "baseline_msgs_per_s": 6000.0, "data_points_per_msg": 45,
            "steps": steps, "headline": summary.headline(steps, 6000.0, 45), "reference": "",
            "rss_peak_mb": {"edge": 80.0}, "cpu_median_pct": {"edge": 55.0}}


def test_ramp_summary_shows_the_sustained_steps_figures():
    text = report.markdown(_result([_step(100, 97, 400), _step(200, 180, 900), _step(400, 300, 2500)]))
    assert "**180 msg/s**, 8,100 data points/s (step 200/s offered, 2,000 devices)" in text
    assert "| ratio to baseline | 0.030 |" in text
    assert "| publish -> series row, ms (p50 / p95 / p99 / max) | 120 / 300 / 900 / 910 |" in text
    assert "| 400 | 4,000 | 392 | 300 | 13,500 | 120 | 2,500 | 0 / 0 | 0 / 0 | p99 2500 ms >= 1000 ms |" in text
    assert "| edge | 1.25 | 1.25 | 1.25 | 55 | 80 |" in text
    assert "| rabbitmq (shared server) | 0.50 | 0.50 | 0.50 | 0 | 0 |" in text


def test_ramp_summary_without_a_sustained_step_reports_what_it_measured():
    text = report.markdown(_result([_step(200, 150, 1700)]))
    assert "not sustained even at the lowest step (p99 1700 ms >= 1000 ms); measured there: 150 msg/s" in text
    assert "| ratio to baseline | 0.025 |" in text
    assert "120 / 300 / 1,700 / 1,710" in text
    assert "| publish -> notification attempt recorded, ms | n/a (none measured) |" in text


def test_profiles_count_data_points_per_datagram():
    assert PROFILES["default"].data_points() == 45  # 10 samples of 3 (DC) or 6 (AC) metrics, 1:1
    assert PROFILES["thingsboard"].data_points() == 3
    assert PROFILES["default"].data_points(samples=2) == 9
    assert PROFILES["thingsboard"].sim_type_mix() == "power_meter_dc:1"


def test_fleet_size_warmup_and_archive_sample():
    fleet = Fleet("ramp1", 200, PROFILES["default"], send_interval=10, samples=10)
    assert fleet.devices == 2000
    assert fleet.warmup == 11
    assert fleet.sample(4) == ["ramp1-000000", "ramp1-000500", "ramp1-001000", "ramp1-001500"]
    assert Fleet("f", 0.5, PROFILES["default"], 1, 1).sample() == ["f-000000"]


def test_every_option_has_help_and_profile_defaults_fill_in():
    actions = [a for a in parser()._actions if not isinstance(a, argparse._HelpAction)]
    assert [a.dest for a in actions if not a.help] == []
    args = parse_args(["--mode", "ramp", "--rates", "200,400", "--profile", "thingsboard"])
    assert (args.rates, args.send_interval, args.samples) == ([200.0, 400.0], 1, 1)
    assert parse_args(["--samples", "2"]).samples == 2


def test_plots_of_a_step_that_stored_nothing_still_render(tmp_path):
    """A run where no datagram reached the series table (a broken stack) still gets its report and plots."""
    from bench import plots

    step = {"target": 1000, "t_start": 0.0, "offered_per_s": 0.0, "delivered_per_s": 0.0,
            "series": {"latency_ms": {}}}
    paths = plots.write(tmp_path, [step], [], [], 0.0)
    assert sorted(paths) == ["latency", "steps", "throughput"]
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths.values())
