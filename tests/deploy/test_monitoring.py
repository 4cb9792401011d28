"""Prometheus, Alertmanager and Grafana: configs pass their own tools, alerts are unit-tested, every metric exists."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, ROOT, assert_ok, load_yaml, run, tool

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules" / "iothub.rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "iothub-overview.json"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
# Metrics the alerts may use that IoT Hub does not export: Prometheus' own and kube-state-metrics'.
FOREIGN_METRICS = {"up", "kube_pod_container_status_waiting_reason", "kube_pod_container_status_restarts_total"}
REQUIRED_ALERTS = {
    "IotHubServiceDown",  # a service down
    "IotHubMqttBrokerDisconnected",  # broker disconnected
    "IotHubRabbitPublisherDown",
    "IotHubIngestRejectsHigh",  # ingest errors
    "IotHubIngestPublishFailures",
    "IotHubBacklogGrowing",  # backlog growing
    "IotHubSequenceGaps",  # sequence gaps
    "IotHubNotificationFailures",  # notification failures
    "IotHubApiErrorRate",  # API error rate
    "IotHubApiLatencyHigh",  # API latency
    "IotHubPodCrashLooping",  # pods crash-looping (kube-state-metrics)
    "IotHubBridgeSessionDown",  # a bridge's persistent session orphaned (still dealt its share)
    "IotHubIngestPartitionWithoutOwner",  # a partition no sequencer consumes
    "IotHubSequencerLag",  # a partition's backlog growing
    "IotHubSequencersDown",  # no sequencer at all
    "IotHubCollectorStageDown",  # another stage with no replica up (gone targets, not failing ones)
}
SCRAPE_TARGETS = {"collector-edge:9110", "collector-sequencer:9111", "collector-series:9112", "collector-archive:9113",
                  "collector-state:9114", "collector-dead-letters:9115", "rule-engine:9120", "notifier:9130",
                  "device-manager:8080", "simulator:9140"}
# Direct metrics (Counter("name", ...)) and custom-collector families (CounterMetricFamily("name", ...)).
DECLARATION = re.compile(r"\b(Counter|Gauge|Histogram|Summary)(?:MetricFamily)?\(\s*"
                         r"[\"']([a-zA-Z_:][a-zA-Z0-9_:]*)[\"']")
OUR_METRIC = re.compile(r"\biothub_[a-z0-9_]+\b")
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]")


def exported_metrics() -> dict[str, str]:
    """Series names the code exposes (prometheus_client suffixes applied) -> the file declaring them."""
    names = {}
    sources = [*ROOT.glob("services/*/*/**/*.py"), *ROOT.glob("libs/iothub/iothub/**/*.py"),
               *ROOT.glob("simulator/simulator/**/*.py")]
    for path in sources:
        for kind, name in DECLARATION.findall(path.read_text()):
            where = str(path.relative_to(ROOT))
            if kind == "Counter":
                base = name.removesuffix("_total")
                series = [f"{base}_total", f"{base}_created"]
            elif kind == "Histogram":
                series = [f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"]
            elif kind == "Summary":
                series = [name, f"{name}_sum", f"{name}_count", f"{name}_created"]
            else:
                series = [name]
            names.update(dict.fromkeys(series, where))
    return names


def rule_expressions() -> list[tuple[str, str]]:
    data = load_yaml(RULES)
    return [(rule.get("alert") or rule.get("record"), rule["expr"]) for group in data["groups"]
            for rule in group["rules"]]


def dashboard_panels() -> list[dict]:
    """Every panel, including those inside collapsed rows."""
    panels = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_expressions() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in dashboard_panels() for target in panel.get("targets", [])]


def test_prometheus_config_and_its_rules_pass_promtool():
    assert_ok(run(tool("promtool"), "check", "config", PROMETHEUS / "prometheus.yml"))
    assert_ok(run(tool("promtool"), "check", "rules", RULES))


def test_alert_rules_unit_tests_pass():
    assert_ok(run(tool("promtool"), "test", "rules", PROMETHEUS / "tests" / "iothub.rules.test.yml"))


def test_kubernetes_scrape_config_passes_promtool(tmp_path):
    """Debian's promtool is built without Kubernetes discovery, so check everything else with static targets."""
    config = load_yaml(PROMETHEUS / "prometheus-kubernetes.yml")
    for job in config["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["pod.example:9110"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copytree(PROMETHEUS / "rules", tmp_path / "rules")
    assert_ok(run(tool("promtool"), "check", "config", tmp_path / "prometheus.yml"))


def test_alertmanager_config_passes_amtool():
    assert_ok(run(tool("amtool"), "check-config", ALERTMANAGER))


def test_inhibit_rules_name_alerts_that_exist():
    alerts = {name for name, _ in rule_expressions()}
    text = ALERTMANAGER.read_text()
    for name in re.findall(r'alertname\s*=\s*"([^"]+)"', text):
        assert name in alerts, f"alertmanager.yml refers to unknown alert {name}"


def compose_scrape_targets() -> dict[str, str]:
    """host:port -> the `service` label, for every target prometheus.yml scrapes (static and Docker DNS)."""
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    targets = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets.update(dict.fromkeys(static["targets"], static.get("labels", {}).get("service")))
        for dns in job.get("dns_sd_configs", []):
            relabel = {r["target_label"]: r["source_labels"] for r in job.get("relabel_configs", [])}
            assert relabel.get("service") == ["__meta_dns_name"], f"{job['job_name']}: no service label"
            targets.update({f"{name}:{dns['port']}": name for name in dns["names"]})
    return targets


def test_prometheus_scrapes_every_service():
    from tests.deploy.test_compose import service_environment

    targets = compose_scrape_targets()
    assert set(targets) >= SCRAPE_TARGETS
    compose = load_yaml(ROOT / "docker-compose.yml")["services"]
    for target, service in targets.items():
        host, port = target.split(":")
        if host in {"localhost", "rabbitmq", "alertmanager"}:
            continue
        assert host in compose, f"{target} is not a Compose service"
        assert service == host, f"{target} is labelled service={service}"
        metrics_port = service_environment(host).get("METRICS_PORT")
        assert metrics_port in (None, port), f"{target}: {host} serves metrics on {metrics_port}"
    # Every service of ours that serves metrics (every collector stage, too) is scraped.
    for name, spec in compose.items():
        port = (spec.get("environment") or {}).get("METRICS_PORT")
        if port and spec.get("restart") != "no":  # one-shots exit before any scrape
            assert f"{name}:{port}" in targets, f"Prometheus does not scrape {name}:{port}"


def test_every_required_alert_exists_with_severity_and_summary():
    data = load_yaml(RULES)
    alerts = {rule["alert"]: rule for group in data["groups"] for rule in group["rules"] if "alert" in rule}
    missing = REQUIRED_ALERTS - set(alerts)
    assert not missing, f"missing alerts: {sorted(missing)}"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"].get("summary"), name


def test_the_important_alerts_are_unit_tested():
    tests = load_yaml(PROMETHEUS / "tests" / "iothub.rules.test.yml")["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    untested = REQUIRED_ALERTS - tested - {"IotHubRabbitPublisherDown", "IotHubIngestPublishFailures"}
    assert not untested, f"no firing unit test for {sorted(untested)}"


@pytest.mark.parametrize("source", ["alert rules", "dashboard"])
def test_every_metric_queried_is_exported_by_the_services(source):
    exported = exported_metrics()
    assert "iothub_consumer_messages_total" in exported, "the metric scan found nothing: check DECLARATION"
    expressions = rule_expressions() if source == "alert rules" else dashboard_expressions()
    unknown = []
    for where, expr in expressions:
        for name in OUR_METRIC.findall(expr):
            if name not in exported:
                unknown.append(f"{where}: {name}")
        for name in SELECTOR.findall(expr):
            if not name.startswith("iothub_") and name not in FOREIGN_METRICS and name not in {"by", "without"}:
                unknown.append(f"{where}: {name} (not an IoT Hub metric)")
    assert not unknown, "metrics no service exports:\n" + "\n".join(unknown)


def test_dashboard_covers_the_platform_and_is_provisioned():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "iothub-overview"
    text = " ".join(expr for _, expr in dashboard_expressions())
    for family in ("iothub_collector_messages_received_total",  # ingest rate
                   "iothub_collector_bridge_latency_seconds_bucket",  # latency
                   "iothub_queue_backlog",  # backlog
                   "iothub_collector_messages_rejected_total",  # rejects
                   "iothub_rule_engine_events_total",  # events
                   "iothub_notifier_attempts_total",  # notifications
                   "iothub_api_requests_total", "iothub_api_request_duration_seconds_bucket"):  # API
        assert family in text, f"the dashboard shows nothing from {family}"
    ids = [panel["id"] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard_panels():
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    datasources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    default = dashboard["templating"]["list"][0]["current"]["value"]
    assert default in {d["uid"] for d in datasources}
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "iothub.yml")["providers"][0]
    compose = load_yaml(ROOT / "docker-compose.yml")["services"]["grafana"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in compose["volumes"]


SERVICE_MATCHER = re.compile(r'service\s*(=~|=)\s*"([^"]*)"')


def test_alerts_and_dashboard_name_services_that_exist():
    """The `service` label is the Compose service / the pods' app.kubernetes.io/name: a rule or panel naming a
    service that no longer exists (the single-process `collector`) would silently never match."""
    from tests.deploy.test_kubernetes import SERVICES

    services = set(load_yaml(ROOT / "docker-compose.yml")["services"])
    assert set(SERVICES) <= services, "Compose and Kubernetes name the services alike"
    named = [(where, op, value) for where, expr in (*rule_expressions(), *dashboard_expressions())
             for op, value in SERVICE_MATCHER.findall(expr)]
    named += [(rule["alert"], "=", rule["labels"]["service"]) for group in load_yaml(RULES)["groups"]
              for rule in group["rules"] if "service" in rule.get("labels", {})]
    assert any(value.startswith("collector-") for _, _, value in named), "the scan found no collector stage"
    for where, op, value in named:
        for alternative in value.split("|") if op == "=~" else [re.escape(value)]:
            assert any(re.fullmatch(alternative, name) for name in services), f"{where}: no service {alternative}"
