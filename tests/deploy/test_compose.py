"""docker-compose.yml: valid Compose, every variable read by the service it is given to, healthy start ordering."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess

import pytest

from iothub.settings import Env
from tests.deploy.conftest import ROOT, assert_ok, load_yaml, parse_env_file, run, tool

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
# Compose service -> the settings module its container reads its environment with.
# The collector runs one service per ingest stage: service -> the stage its command names (python -m collector STAGE).
COLLECTOR_STAGES = {
    "collector-edge": "edge",
    "collector-sequencer": "sequencer",
    "collector-series": "series",
    "collector-archive": "archive",
    "collector-state": "state",
    "collector-dead-letters": "dead_letters",
    "collector-energy": "energy",
}
SETTINGS = {
    **dict.fromkeys(COLLECTOR_STAGES, "collector.settings"),
    "rule-engine": "rule_engine.settings",
    "notifier": "notifier.settings",
    "device-manager": "device_manager.settings",
    "simulator": "simulator.settings",
    "simulator-provision": "simulator.settings",
    "mosquitto-crl-sync": "iothub.crl_sync.settings",
}
INFRASTRUCTURE = ("mosquitto", "rabbitmq", "postgres", "minio", "influxdb")
MONITORING = ("prometheus", "grafana", "alertmanager")
SECRET_NAME = re.compile(r"(PASSWORD|PASS|SECRET|TOKEN|_KEY)$")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose() -> dict:
    return load_yaml(COMPOSE)


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} and $$ escapes."""

    def substitute(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        value = env.get(name)
        if op in (":-", "-"):
            return value if (value if op == ":-" else value is not None) else arg
        if op in (":?", "?"):
            if not value if op == ":?" else value is None:
                pytest.fail(f"${{{name}}} is required ({arg}) but .env.example does not set it")
            return value
        return value or ""

    return VARIABLE.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def service_environment(service: str) -> dict[str, str]:
    """The container environment Compose would pass, with .env.example as the .env file."""
    env = parse_env_file(ENV_EXAMPLE)
    raw = compose()["services"][service].get("environment") or {}
    assert isinstance(raw, dict), f"{service}: use the mapping form of environment"
    return {name: interpolate(str(value), env) for name, value in raw.items()}


def test_compose_file_validates_against_the_compose_specification():
    assert_ok(run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE))


def test_every_platform_component_is_present():
    services = compose()["services"]
    for name in (*SETTINGS, *INFRASTRUCTURE, *MONITORING, "migrate", "minio-init"):
        assert name in services, name
    for name in MONITORING:
        assert services[name].get("profiles") == ["monitoring"], f"{name} belongs to the monitoring profile"


@pytest.mark.parametrize("service", SETTINGS)
def test_environment_names_are_read_by_the_services_settings(service):
    """No typo'd variable names: each one must be read by settings.load(), which must accept the values."""
    try:
        module = importlib.import_module(SETTINGS[service])
    except ImportError as exc:
        pytest.fail(f"{SETTINGS[service]} cannot be imported: {exc}")

    environment = service_environment(service)
    env = Env(environment)
    spec = compose()["services"][service]
    if "argv" in inspect.signature(module.load).parameters:  # the simulator's CLI defaults come from the env
        command = spec.get("command") or []
        argv = command[command.index("simulator") + 1:] if "simulator" in command else []
        module.load(argv, env=env)
    else:
        module.load(env)
    unknown = set(environment) - env.names
    assert not unknown, f"{service} sets variables its settings never read: {sorted(unknown)}"


def test_every_long_running_service_has_a_healthcheck():
    services = compose()["services"]
    one_shots = {name for name, spec in services.items() if spec.get("restart") == "no"}
    assert one_shots == {"migrate", "minio-init", "mosquitto-init", "simulator-provision"}
    for name, spec in services.items():
        if name in one_shots:
            continue
        check = spec.get("healthcheck")
        built_here = "build" in spec or name in SETTINGS  # our images carry a HEALTHCHECK (test_docker)
        assert (check and not check.get("disable")) or built_here, f"{name} has no healthcheck"


def test_dependencies_wait_for_health_or_completion():
    services = compose()["services"]
    for name, spec in services.items():
        depends = spec.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: use the long depends_on form with a condition"
        for dependency, how in depends.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = ("service_completed_successfully" if services[dependency].get("restart") == "no"
                        else "service_healthy")
            assert how.get("condition") == expected, f"{name} -> {dependency}"
    for name in (*COLLECTOR_STAGES, "rule-engine", "notifier", "device-manager"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "collector-edge" in services["simulator"]["depends_on"], "the simulator publishes to the edge"


def test_images_are_pinned():
    for name, spec in compose()["services"].items():
        image = spec.get("image", "")
        assert ":" in image, f"{name}: no tag"
        assert not image.endswith(":latest"), f"{name}: latest"
    services = compose()["services"]
    assert re.fullmatch(r"eclipse-mosquitto:2\.0\.\d+", services["mosquitto"]["image"])
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3.13")
    assert services["rabbitmq"]["image"].endswith("-management")
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["influxdb"]["image"].startswith("influxdb:2.7")


def test_state_lives_in_named_volumes_and_the_mosquitto_config_is_mounted():
    data = compose()
    declared = set(data["volumes"])
    for name, spec in data["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("${"):  # a host folder the operator names in .env (the TLS certificates)
                assert source[2:].split(":")[0] in parse_env_file(ENV_EXAMPLE), f"{name}: {source} not in .env.example"
            elif not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
            else:
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
    assert "./deploy/mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in \
        data["services"]["mosquitto"]["volumes"]


def test_influxdb_is_initialised_from_the_environment():
    env = service_environment("influxdb")
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert env["DOCKER_INFLUXDB_INIT_ORG"] == "iot-org"
    assert env["DOCKER_INFLUXDB_INIT_BUCKET"] == "iot-metrics"
    raw = compose()["services"]["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    assert raw.startswith("${INFLUXDB_TOKEN")


def test_secrets_come_from_the_env_file_only():
    """Every secret-looking value is a ${VAR} reference, every required variable is in .env.example."""
    text = COMPOSE.read_text()
    for name, spec in compose()["services"].items():
        for key, value in (spec.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert "${" in str(value), f"{name}: {key} is a literal; read it from .env"
    required = {m.group(1) for m in VARIABLE.finditer(text) if m.group(2) in (":?", "?")}
    example = parse_env_file(ENV_EXAMPLE)
    assert required <= set(example), f".env.example lacks {required - set(example)}"
    for key, value in example.items():
        if SECRET_NAME.search(key) and value:
            assert value.startswith("change-me"), f".env.example: {key} should be a change-me placeholder"


def test_the_env_file_is_ignored_by_git():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env must be git-ignored"
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", ".env"], cwd=ROOT, capture_output=True,
                             check=False)
    assert tracked.returncode != 0, ".env is committed"


def test_only_device_and_api_ports_listen_beyond_localhost():
    public = {"8883", "8884", "8080", "8081"}  # MQTT/TLS and HTTP ingest for devices, the REST API for operators
    for name, spec in compose()["services"].items():
        for mapping in spec.get("ports", []):
            resolved = interpolate(str(mapping), parse_env_file(ENV_EXAMPLE))
            container_port = resolved.rsplit(":", 1)[-1]
            if container_port not in public:
                assert resolved.startswith("127.0.0.1:"), f"{name}: {mapping} should bind 127.0.0.1"


# What each collector stage may be given besides the variables every stage reads (settings.load reads them all, so
# the settings test above cannot tell a writer given MQTT credentials it never uses).
COMMON_COLLECTOR_ENV = {"IOTHUB_ENV", "LOG_LEVEL", "DATABASE_URL", "AMQP_URL", "METRICS_PORT"}
STAGE_ENV_PREFIXES = {
    "edge": ("MQTT_", "HTTP_", "INGEST_PARTITIONS", "TLS_"),
    "sequencer": ("INGEST_PARTITIONS",),
    "series": ("SERIES_BACKENDS", "INFLUXDB_"),
    "archive": ("ARCHIVE_", "S3_"),
    "state": (),
    "dead_letters": (),
    "energy": ("METERING_",),
}


def procfile_metrics_ports() -> dict[str, str]:
    """Procfile process name -> the METRICS_PORT it sets."""
    ports = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        match = re.match(r"([\w-]+):\s*METRICS_PORT=(\d+)\s", line)
        if match:
            ports[match.group(1)] = match.group(2)
    return ports


def test_every_collector_stage_is_its_own_service_of_the_collector_image():
    from collector import settings
    from collector.__main__ import STAGES, parse_stages
    from collector.writers.runner import WRITERS

    services = compose()["services"]
    assert "collector" not in services, "the single-process collector service is replaced by one per stage"
    commands = {}
    for name, spec in services.items():
        command = spec.get("command") or []
        if command[:3] == ["python", "-m", "collector"]:
            commands[name] = command[3:]
    assert commands == {name: [stage] for name, stage in COLLECTOR_STAGES.items()}
    assert set(COLLECTOR_STAGES.values()) == (set(STAGES) - {"writers"}) | set(WRITERS), "a stage has no service"
    for name, stage in COLLECTOR_STAGES.items():
        spec = services[name]
        assert spec["build"]["target"] == "collector" and "/collector:" in spec["image"], name
        # The command must name a stage the collector accepts, and run exactly that stage.
        narrowed = parse_stages([stage], settings.load(Env(service_environment(name))))
        assert narrowed.stages == (("writers",) if stage in WRITERS else (stage,)), name
        assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"], f"{name} lost the hardening anchor"


def test_each_stage_has_its_own_metrics_port_and_a_readiness_healthcheck():
    services = compose()["services"]
    procfile = procfile_metrics_ports()
    for name in COLLECTOR_STAGES:
        port = service_environment(name)["METRICS_PORT"]
        assert port == procfile[name], f"{name}: METRICS_PORT {port}, the Procfile says {procfile[name]}"
        check = " ".join(services[name]["healthcheck"]["test"])
        assert "os.environ['METRICS_PORT']" in check and "/readyz" in check, name
    ports = [service_environment(name)["METRICS_PORT"] for name in COLLECTOR_STAGES]
    assert len(set(ports)) == len(ports)


def test_stages_get_only_the_environment_they_need():
    for name, stage in COLLECTOR_STAGES.items():
        extra = {key for key in service_environment(name) if key not in COMMON_COLLECTOR_ENV
                 and not key.startswith(STAGE_ENV_PREFIXES[stage])}
        assert not extra, f"{name} is given {sorted(extra)}, which the {stage} stage does not use"


def test_edge_is_one_bridge_with_a_fixed_session_and_sequencers_have_a_failover():
    services = compose()["services"]
    edge = services["collector-edge"]
    assert edge.get("deploy", {}).get("replicas", 1) == 1 and "scale" not in edge, "replicas would share a client id"
    assert service_environment("collector-edge")["MQTT_CLIENT_ID"] == "iothub-collector", \
        "the single-process collector's session id, so an upgrade resumes its session"
    assert services["collector-sequencer"]["deploy"]["replicas"] >= 2
    published = {name for name, spec in services.items()
                 if any(str(m).endswith(":8081") for m in spec.get("ports", []))}
    assert published == {"collector-edge"}, "HTTP ingest is the edge's"


def test_edge_and_sequencers_agree_on_the_partition_count():
    counts = {name: service_environment(name).get("INGEST_PARTITIONS") for name in COLLECTOR_STAGES}
    assert counts["collector-edge"] and counts["collector-edge"] == counts["collector-sequencer"]
    assert {c for c in counts.values() if c} == {counts["collector-edge"]}
    raw = {compose()["services"][name]["environment"]["INGEST_PARTITIONS"]
           for name in ("collector-edge", "collector-sequencer")}
    assert raw == {"${INGEST_PARTITIONS:-8}"}, "one setting in .env for both stages"


def test_the_crl_sync_shares_the_brokers_pid_namespace_uid_and_crl_volume():
    """Revocation reaches the broker by itself: the sidecar writes the file mosquitto.conf's crlfile names and may
    signal Mosquitto (same PID namespace, same uid: no capability needed)."""
    services = compose()["services"]
    sync, broker = services["mosquitto-crl-sync"], services["mosquitto"]
    assert sync["pid"] == "service:mosquitto" and sync["user"] == "1883:1883"
    assert sync["read_only"] is True and sync["cap_drop"] == ["ALL"] and "cap_add" not in sync
    env = sync["environment"]
    crl_dir = env["CRL_SYNC_FILE"].rsplit("/", 1)[0]
    assert f"mosquitto-crl:{crl_dir}" in sync["volumes"] and f"mosquitto-crl:{crl_dir}:ro" in broker["volumes"]
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    assert f"crlfile {env['CRL_SYNC_FILE']}" in conf
    assert env["CRL_SYNC_URL"].startswith("https://device-manager:8080/api/v1/pki/device-ca.crl")
    assert "mosquitto-crl:/crl" in services["mosquitto-init"]["volumes"]  # the first CRL, before the broker starts
    assert services["device-manager"]["environment"]["DEVICE_CA_CRL_DISTRIBUTION"] == "pull"
