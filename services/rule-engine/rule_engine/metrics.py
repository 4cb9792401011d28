"""Prometheus metrics of the rule engine and the decorator that records them around the service."""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

from rule_engine.changes import Changes
from rule_engine.model import Input

EVALUATIONS = Counter("iothub_rule_engine_evaluations_total", "Rule evaluations (measurement x applicable rule)")
MATCHES = Counter("iothub_rule_engine_matches_total", "Evaluations whose condition held")
EVENTS = Counter("iothub_rule_engine_events_total", "Event changes (opened/updated/renotify/escalated/resolved/"
                 "suppressed)", ["change", "severity"])
DUPLICATES = Counter("iothub_rule_engine_duplicates_total", "Redelivered inputs skipped by the idempotency check")
INPUTS = Counter("iothub_rule_engine_inputs_total", "Decoded inputs handled", ["kind"])
EVALUATION_SECONDS = Histogram("iothub_rule_engine_evaluation_seconds", "Evaluate-and-store time per batch",
                               ["operation"], buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
EVENT_LATENCY = Histogram("iothub_rule_engine_event_latency_seconds", "Collector received_at to event stored",
                          buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
QUEUE_LAG = Gauge("iothub_rule_engine_queue_lag_seconds", "Now minus received_at of the newest handled message")
OUTBOX_BACKLOG = Gauge("iothub_rule_engine_outbox_backlog", "Outbox rows not yet published")
OUTBOX_PUBLISHED = Counter("iothub_rule_engine_outbox_published_total", "Outbox rows published and confirmed")
RULES_LOADED = Gauge("iothub_rule_engine_rules_loaded", "Enabled rules in the cache")
PARTITIONS_OWNED = Gauge("iothub_rule_engine_partitions_owned", "Partitions this replica evaluates now")
RULE_RELOADS = Gauge("iothub_rule_engine_rules_version", "Rule cache reloads since start")


def record_outbox(published: int, backlog: int) -> None:
    """Relay callback."""
    OUTBOX_PUBLISHED.inc(published)
    OUTBOX_BACKLOG.set(backlog)


class MetricsMiddleware:
    """Wraps the service: same methods, plus metrics."""

    def __init__(self, service):
        self._service = service

    def __getattr__(self, name):
        return getattr(self._service, name)

    def handle(self, inputs: Sequence[Input]) -> Changes:
        """Evaluate a batch and record what it did."""
        started = time.perf_counter()
        changes = self._service.handle(inputs)
        EVALUATION_SECONDS.labels("batch").observe(time.perf_counter() - started)
        self._record(changes)
        for inp in inputs:
            INPUTS.labels(inp.kind).inc()
        if inputs:
            QUEUE_LAG.set(max(0.0, time.time() - max(inp.received_at for inp in inputs)))
        return changes

    def sweep(self, partition: int) -> Changes:
        """Run a sweep of a partition and record what it did."""
        started = time.perf_counter()
        changes = self._service.sweep(partition)
        EVALUATION_SECONDS.labels("sweep").observe(time.perf_counter() - started)
        self._record(changes)
        return changes

    def _record(self, changes: Changes) -> None:
        EVALUATIONS.inc(changes.evaluations)
        MATCHES.inc(changes.matches)
        DUPLICATES.inc(changes.duplicates)
        for (change, severity), n in changes.counts.items():
            EVENTS.labels(change, severity).inc(n)
        stored = time.time()
        for received_at in changes.stored_latency:
            EVENT_LATENCY.observe(max(0.0, stored - received_at))
        RULES_LOADED.set(sum(r.enabled for r in self._service.evaluator.index.rules.values()))
        RULE_RELOADS.set(self._service.rules_version)
