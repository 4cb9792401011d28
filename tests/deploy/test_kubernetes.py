"""Kustomize overlays: build, validate strictly against the Kubernetes schemas, and hold the deployment policies."""

from __future__ import annotations

import base64
import importlib
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, ROOT, assert_ok, run, tool

K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "production")
# The oldest Kubernetes release we support and the newest schemas the validator ships.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# The collector's stages: workload -> (kind, the stage its command runs). Every stage is its own workload.
COLLECTOR_STAGES = {
    "collector-edge": ("StatefulSet", "edge"),
    "collector-sequencer": ("Deployment", "sequencer"),
    "collector-series": ("Deployment", "series"),
    "collector-archive": ("Deployment", "archive"),
    "collector-state": ("Deployment", "state"),
    "collector-dead-letters": ("Deployment", "dead_letters"),
    "collector-energy": ("Deployment", "energy"),
}
# Workloads whose replicas share one queue's work: the only ones an HPA may scale.
AUTOSCALED = {"collector-series", "collector-archive", "rule-engine"}
SERVICES = {  # workload -> settings module of the image it runs
    **dict.fromkeys(COLLECTOR_STAGES, "collector.settings"),
    "rule-engine": "rule_engine.settings",
    "notifier": "notifier.settings",
    "device-manager": "device_manager.settings",
}
WORKLOADS = ("Deployment", "StatefulSet", "Job")
STORES = ("mosquitto", "rabbitmq", "postgres", "minio", "influxdb")
# The only egress each component may have, besides DNS (the architecture's flows).
EGRESS_PORTS = {
    "collector-edge": {8883, 5672, 5432},
    "collector-sequencer": {5672, 5432},
    "collector-series": {5672, 5432, 8086},
    "collector-archive": {5672, 5432, 9000},
    "collector-state": {5672, 5432},
    "collector-dead-letters": {5672, 5432},
    "collector-energy": {5672, 5432},
    "rule-engine": {5672, 5432},
    "notifier": {5672, 5432, 443, 587},
    "device-manager": {5432, 5672, 8883, 8086, 9000},
    "migrate": {5432},
    "simulator": {8883, 5432},  # dev only
}
# Production's managed endpoints use TLS ports for the same flows: AMQPS 5671, HTTPS 443 (InfluxDB, S3).
PRODUCTION_TLS_PORTS = {
    "collector-edge": {5671}, "collector-sequencer": {5671}, "collector-series": {5671, 443},
    "collector-archive": {5671, 443}, "collector-state": {5671}, "collector-dead-letters": {5671},
    "collector-energy": {5671}, "rule-engine": {5671}, "notifier": {5671}, "device-manager": {5671, 443},
    "migrate": set(),
}
COPIES = {  # kustomize can only read below a kustomization; these copies must match their canonical files
    K8S / "overlays/dev/files/mosquitto.conf": DEPLOY / "mosquitto/mosquitto.conf",
    K8S / "components/monitoring/files/iothub.rules.yml": DEPLOY / "prometheus/rules/iothub.rules.yml",
    K8S / "components/monitoring/files/iothub-overview.json": DEPLOY / "grafana/dashboards/iothub-overview.json",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, list[dict]]:
    """Every overlay rendered by `kubectl kustomize` from a copy whose secret files come from the examples."""
    kubectl = tool("kubectl")
    tree = tmp_path_factory.mktemp("k8s") / "k8s"
    # A developer's real secrets never enter the test: the secret files are made from the committed examples.
    shutil.copytree(K8S, tree, ignore=lambda folder, names: [n for n in names if Path(folder).name == "secrets"
                                                             and n.endswith(".env")])
    for example in tree.glob("overlays/*/secrets/*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    result = {}
    for overlay in OVERLAYS:
        rendered = run(kubectl, "kustomize", tree / "overlays" / overlay)
        assert_ok(rendered)
        result[overlay] = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    return result


def of_kind(resources: list[dict], *kinds: str) -> list[dict]:
    return [r for r in resources if r["kind"] in kinds]


def by_name(resources: list[dict], kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in of_kind(resources, kind)}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def service_workloads(resources: list[dict]) -> dict[str, dict]:
    """Our services' workloads (Deployments and the edge's StatefulSet) by name."""
    workloads = {**by_name(resources, "Deployment"), **by_name(resources, "StatefulSet")}
    return {name: workload for name, workload in workloads.items() if name in SERVICES}


def logical_name(resource: dict) -> str:
    return resource["metadata"].get("labels", {}).get("app.kubernetes.io/name", resource["metadata"]["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly_against_kubernetes_schemas(built, overlay):
    errors = []
    for version in KUBERNETES_VERSIONS:
        for resource in built[overlay]:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
                errors.append(f"{version} {resource['kind']}/{resource['metadata']['name']}: {exc}")
    assert not errors, "\n".join(errors)


def test_the_validator_cli_agrees_on_one_overlay(built, tmp_path):
    """The same check as the users' command line (`kubernetes-validate --strict`)."""
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump_all(built["dev"]))
    assert_ok(run(tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSIONS[0], path))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_have_probes_limits_and_run_as_non_root(built, overlay):
    for workload in of_kind(built[overlay], *WORKLOADS):
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        spec = pod_spec(workload)
        assert spec.get("automountServiceAccountToken") is False, f"{name} mounts a service account token"
        pod_security = spec.get("securityContext", {})
        for container in containers(workload):
            security = {**pod_security, **container.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True, f"{name}: runAsNonRoot"
            assert security.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation"
            assert security.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: capabilities"
            assert security.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: seccomp"
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{name}: {bound}"
        if workload["kind"] != "Job":
            for container in spec["containers"]:  # init containers run to completion: no probes
                assert "livenessProbe" in container and "readinessProbe" in container, f"{name}: probes"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(built, overlay):
    for workload in of_kind(built[overlay], *WORKLOADS):
        for container in containers(workload):
            image = container["image"]
            last = image.rsplit("/", 1)[-1]
            assert "@sha256:" in image or ":" in last, f"{image} has no tag"
            assert not last.endswith(":latest"), f"{image} uses latest"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_our_services_have_read_only_roots_with_a_tmp_volume(built, overlay):
    for workload in of_kind(built[overlay], *WORKLOADS):
        for container in containers(workload):
            if "iothub/" not in container["image"]:
                continue
            name = f"{workload['metadata']['name']}/{container['name']}"
            assert container["securityContext"].get("readOnlyRootFilesystem") is True, name
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
            assert "/tmp" in mounts and "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp must be an emptyDir"


# TLS Secrets cert-manager makes and renews (docs/security.md): referenced by the manifests, never generated here.
CERT_MANAGER_SECRETS = {"iothub-mqtt-tls", "iothub-device-ca"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_config_and_secret_reference_resolves_to_a_generated_object(built, overlay):
    resources = built[overlay]
    config_maps = by_name(resources, "ConfigMap")
    secrets = by_name(resources, "Secret")
    for workload in of_kind(resources, *WORKLOADS):
        where = workload["metadata"]["name"]
        for container in containers(workload):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    target = config_maps.get(ref["configMapKeyRef"]["name"])
                    assert target, f"{where}: ConfigMap {ref['configMapKeyRef']['name']} is not generated"
                    assert ref["configMapKeyRef"]["key"] in target.get("data", {}), f"{where}: {env['name']}"
                if "secretKeyRef" in ref:
                    target = secrets.get(ref["secretKeyRef"]["name"])
                    assert target, f"{where}: Secret {ref['secretKeyRef']['name']} is not generated"
                    assert ref["secretKeyRef"]["key"] in target.get("data", {}), f"{where}: {env['name']}"
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, where
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, where
        for volume in pod_spec(workload).get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, f"{where}: volume {volume['name']}"
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                assert name in secrets or name in CERT_MANAGER_SECRETS, f"{where}: volume {volume['name']}"
    generated = [r for r in (*config_maps.values(), *secrets.values()) if r["metadata"]["name"].startswith("iothub-")]
    assert any(r["kind"] == "Secret" and r["metadata"]["name"].startswith("iothub-secrets-") for r in generated), \
        "iothub-secrets must come from a secretGenerator (name hash suffix)"


def resolved_environment(container: dict, resources: list[dict]) -> dict[str, str]:
    """A container's environment with ConfigMap and Secret references replaced by the generated values."""
    config_maps = by_name(resources, "ConfigMap")
    secrets = by_name(resources, "Secret")
    environment = {}
    for env in container.get("env", []):
        ref = env.get("valueFrom", {})
        if "value" in env:
            environment[env["name"]] = env["value"]
        elif "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]
            environment[env["name"]] = config_maps[key["name"]]["data"][key["key"]]
        elif "secretKeyRef" in ref:
            raw = secrets[ref["secretKeyRef"]["name"]]["data"][ref["secretKeyRef"]["key"]]
            environment[env["name"]] = base64.b64decode(raw).decode()
        elif "fieldRef" in ref:
            environment[env["name"]] = "pod-name-0"
    return environment


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_deployment_environment_is_read_by_the_services_settings(built, overlay, service):
    try:
        module = importlib.import_module(SERVICES[service])
    except ImportError as exc:
        pytest.fail(f"{SERVICES[service]} cannot be imported: {exc}")
    from iothub.settings import Env

    workload = service_workloads(built[overlay])[service]
    environment = resolved_environment(workload["spec"]["template"]["spec"]["containers"][0], built[overlay])
    env = Env(environment)
    module.load(env)
    unknown = set(environment) - env.names
    assert not unknown, f"{service} is given variables its settings never read: {sorted(unknown)}"


def test_dev_simulator_environment_is_read_by_its_settings(built):
    from iothub.settings import Env
    from simulator import settings

    simulator = by_name(built["dev"], "Deployment")["simulator"]
    provision = pod_spec(simulator)["initContainers"][0]
    assert provision["command"][-1] == "provision"
    for container in (provision, pod_spec(simulator)["containers"][0]):
        environment = resolved_environment(container, built["dev"])
        env = Env(environment)
        settings.load(container.get("command", [])[3:], env=env)
        assert not set(environment) - env.names, f"unread: {sorted(set(environment) - env.names)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_ports_probes_and_disruption_budgets(built, overlay):
    resources = built[overlay]
    deployments = by_name(resources, "Deployment")
    assert set(deployments) - set(SERVICES) == ({"simulator"} if overlay == "dev" else set())
    assert set(service_workloads(resources)) == set(SERVICES), "a service or collector stage has no workload"
    services = by_name(resources, "Service")
    budgets = {p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for p in of_kind(resources,
                                                                                               "PodDisruptionBudget")}
    for name, deployment in {**deployments, **service_workloads(resources)}.items():
        assert name in budgets, f"no PodDisruptionBudget for {name}"
        if name not in SERVICES:
            continue
        # Only what something connects to has a Service: the edge (HTTP ingest) and the non-collector services;
        # Prometheus scrapes the pods themselves.
        if name not in COLLECTOR_STAGES or name == "collector-edge":
            assert name in services, f"no Service for {name}"
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_workloads_that_share_a_queue_autoscale(built, overlay):
    """Series and archive writers and the rule engine; never the edge (a removed bridge orphans its MQTT session),
    the sequencer (bounded by the partitions) or the state and dead-letter writers."""
    resources = built[overlay]
    deployments = by_name(resources, "Deployment")
    targets = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(resources, "HorizontalPodAutoscaler")}
    assert set(targets) == AUTOSCALED
    for name, hpa in targets.items():
        assert name in deployments and hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert "replicas" not in deployments[name]["spec"], f"{name}: the HPA owns the replica count"
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"] >= 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_only_the_architectures_flows(built, overlay):
    policies = of_kind(built[overlay], "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
            and not p["spec"].get("egress")]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}, "default deny is missing"
    dns = [p for p in policies if p["spec"]["podSelector"] == {} and p["spec"].get("egress")]
    assert dns and {port["port"] for rule in dns[0]["spec"]["egress"] for port in rule["ports"]} == {53}
    egress: dict[str, set[int]] = {}
    for policy in policies:
        selected = policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        for rule in policy["spec"].get("egress", []):
            if selected:
                egress.setdefault(selected, set()).update(p["port"] for p in rule.get("ports", []))
            assert rule.get("ports"), f"{policy['metadata']['name']}: egress to every port"
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("ports"), f"{policy['metadata']['name']}: ingress on every port"
    for component, base_ports in EGRESS_PORTS.items():
        if component == "simulator" and overlay != "dev":
            continue
        ports = base_ports | (PRODUCTION_TLS_PORTS[component] if overlay == "production" else set())
        assert egress.get(component) == ports, f"{component} egress {egress.get(component)} != {ports}"
    selected = {p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") for p in policies}
    for workload in of_kind(built[overlay], *WORKLOADS):
        assert logical_name(workload) in selected, f"{workload['metadata']['name']} has no NetworkPolicy"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_migration_job_applies_the_schema(built, overlay):
    job = by_name(built[overlay], "Job")["iothub-migrate"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "iothub.db.migrate"]
    assert container["env"][0]["name"] == "DATABASE_URL"


def test_dev_runs_the_stores_in_cluster_as_stateful_sets(built):
    sets = by_name(built["dev"], "StatefulSet")
    assert set(sets) == {*STORES, "collector-edge"}
    del sets["collector-edge"]  # stateless apart from its name: no volume
    for name, stateful_set in sets.items():
        assert stateful_set["spec"].get("volumeClaimTemplates"), f"{name} has no persistent volume"
    mosquitto = pod_spec(sets["mosquitto"])
    config = next(v for v in mosquitto["volumes"] if v["name"] == "config")
    assert config["configMap"]["name"].startswith("mosquitto-config-")
    namespaces = by_name(built["dev"], "Namespace")
    assert set(namespaces) == {"iothub-dev"}
    assert {r["metadata"].get("namespace") for r in built["dev"] if r["kind"] != "Namespace"} == {"iothub-dev"}


def test_production_uses_external_endpoints_tls_more_replicas_and_release_images(built):
    resources = built["production"]
    assert set(by_name(resources, "StatefulSet")) == {"collector-edge"}, "production uses managed stores"
    config = next(c for c in of_kind(resources, "ConfigMap") if c["metadata"]["name"].startswith("iothub-config"))
    for key in ("MQTT_HOST", "INFLUXDB_URL", "S3_ENDPOINT"):
        assert "." in config["data"][key], f"{key} should name an external endpoint"
    assert config["data"]["S3_SECURE"] == "true"
    ingress = by_name(resources, "Ingress")["iothub"]
    assert "cert-manager.io/cluster-issuer" in ingress["metadata"]["annotations"]
    assert ingress["spec"]["tls"][0]["secretName"]
    backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"device-manager", "collector-ingest"}
    deployments = by_name(resources, "Deployment")
    assert deployments["device-manager"]["spec"]["replicas"] >= 2
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(resources, "HorizontalPodAutoscaler")}
    assert hpas["collector-series"]["spec"]["minReplicas"] >= 2
    assert hpas["collector-archive"]["spec"]["minReplicas"] >= 2
    assert by_name(resources, "StatefulSet")["collector-edge"]["spec"]["replicas"] >= 2
    assert deployments["collector-sequencer"]["spec"]["replicas"] >= 2
    assert "ingest" in ingress_ports(resources, "collector-ingest")
    for workload in of_kind(resources, *WORKLOADS):
        for container in containers(workload):
            assert container["image"].startswith("registry.example.com/iothub/"), container["image"]
    namespace = by_name(resources, "Namespace")["iothub"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_monitoring_component_ships_rules_and_dashboard(built):
    for overlay in OVERLAYS:
        config_maps = by_name(built[overlay], "ConfigMap")
        assert "iothub.rules.yml" in config_maps["iothub-prometheus-rules"]["data"]
        dashboard = config_maps["iothub-grafana-dashboard"]
        assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


@pytest.mark.parametrize("copy", COPIES, ids=lambda p: str(p.relative_to(K8S)))
def test_copies_for_kustomize_match_their_canonical_files(copy):
    assert copy.read_bytes() == COPIES[copy].read_bytes(), f"{copy} is stale: run deploy/k8s/sync-files.sh"


def test_secret_files_are_ignored_and_only_examples_are_committed():
    examples = sorted(K8S.glob("overlays/*/secrets/*.env.example"))
    assert len(examples) >= 2
    for example in examples:
        real = example.with_suffix("")
        ignored = subprocess.run(["git", "check-ignore", "-q", str(real)], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"{real} is not git-ignored"
        assert "change-me" in example.read_text()
    tracked = subprocess.run(["git", "ls-files", "deploy/k8s"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert not [path for path in tracked if path.endswith(".env")], "a real secrets file is committed"


def test_the_overlays_reference_files_that_exist():
    for kustomization in K8S.rglob("kustomization.yaml"):
        data = yaml.safe_load(kustomization.read_text())
        for entry in data.get("resources", []) + data.get("components", []):
            assert (kustomization.parent / entry).exists(), f"{kustomization}: {entry}"
        assert Path(kustomization).is_file()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scrape_annotations_point_at_the_probed_port(built, overlay):
    """Prometheus scrapes the port the probes use, which is the image's HEALTH_PORT (tests/deploy/test_docker)."""
    from tests.deploy.test_docker import DOCKERFILE, stages

    images = stages(DOCKERFILE)
    workloads = {**by_name(built[overlay], "Deployment"), **by_name(built[overlay], "StatefulSet")}
    for name, workload in workloads.items():
        template = workload["spec"]["template"]
        container = template["spec"]["containers"][0]
        image = container["image"].rsplit("/", 1)[-1].split(":")[0]
        if image not in images:  # the dev overlay's stores
            continue
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        probed = ports[container["readinessProbe"]["httpGet"]["port"]]
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(probed), name
        assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true", name
        assert f"ENV HEALTH_PORT={probed}" in images[image], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespaces_enforce_the_restricted_pod_security_standard(built, overlay):
    """The workload checks above are the "restricted" profile's rules, so the namespace can enforce it."""
    for namespace in of_kind(built[overlay], "Namespace"):
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    allowed_volumes = {"name", "configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected",
                       "downwardAPI", "ephemeral", "csi"}
    for workload in of_kind(built[overlay], *WORKLOADS):
        for volume in pod_spec(workload).get("volumes", []):
            assert set(volume) <= allowed_volumes, f"{workload['metadata']['name']}: volume {volume}"
        assert not pod_spec(workload).get("hostNetwork") and not pod_spec(workload).get("hostPID")


def ingress_ports(resources: list[dict], service: str) -> set[str]:
    """Port names of a Service that selects the edge's pods."""
    spec = by_name(resources, "Service")[service]["spec"]
    assert spec["selector"] == {"app.kubernetes.io/name": "collector-edge"}, f"{service} does not select the edge"
    return {port["name"] for port in spec["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_collector_stage_runs_in_its_own_workload(built, overlay):
    from collector.__main__ import STAGES
    from collector.writers.runner import WRITERS

    resources = built[overlay]
    assert "collector" not in {r["metadata"]["name"] for r in resources}, "the single-process collector is gone"
    assert {stage for _, stage in COLLECTOR_STAGES.values()} == (set(STAGES) - {"writers"}) | set(WRITERS)
    for name, (kind, stage) in COLLECTOR_STAGES.items():
        workload = by_name(resources, kind).get(name)
        assert workload, f"no {kind} {name}"
        container = pod_spec(workload)["containers"][0]
        assert container["command"] == ["python", "-m", "collector", stage], name
        assert "/collector:" in container["image"], name
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == name, f"{name}: the service label Prometheus copies"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_edge_is_a_stateful_set_whose_pod_names_are_its_mqtt_sessions(built, overlay):
    resources = built[overlay]
    edge = by_name(resources, "StatefulSet")["collector-edge"]
    env = {e["name"]: e for e in pod_spec(edge)["containers"][0]["env"]}
    assert env["MQTT_CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert resolved_environment(pod_spec(edge)["containers"][0], resources)["MQTT_SHARE_GROUP"], \
        "replicas must share the subscription"
    governing = by_name(resources, "Service")[edge["spec"]["serviceName"]]
    assert governing["spec"]["clusterIP"] == "None", "a StatefulSet's governing Service is headless"
    assert "ingest" in ingress_ports(resources, "collector-ingest")
    assert by_name(resources, "Deployment").keys().isdisjoint({"collector-edge"})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sequencers_run_two_or_more_and_a_drain_keeps_one(built, overlay):
    resources = built[overlay]
    sequencer = by_name(resources, "Deployment")["collector-sequencer"]
    assert sequencer["spec"]["replicas"] >= 2, "a second replica is the partitions' failover"
    budget = by_name(resources, "PodDisruptionBudget")["collector-sequencer"]
    assert budget["spec"]["minAvailable"] == 1 and "maxUnavailable" not in budget["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_edge_and_sequencers_read_the_same_partition_count(built, overlay):
    resources = built[overlay]
    counts = {}
    for name, workload in service_workloads(resources).items():
        container = pod_spec(workload)["containers"][0]
        refs = {e["name"]: e.get("valueFrom", {}).get("configMapKeyRef") for e in container.get("env", [])}
        if "INGEST_PARTITIONS" in refs:
            assert refs["INGEST_PARTITIONS"], f"{name}: INGEST_PARTITIONS must come from the shared ConfigMap"
            counts[name] = resolved_environment(container, resources)["INGEST_PARTITIONS"]
    assert set(counts) == {"collector-edge", "collector-sequencer"}
    assert len(set(counts.values())) == 1
