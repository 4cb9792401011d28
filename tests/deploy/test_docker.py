"""Dockerfiles: hadolint-clean, pinned slim base, non-root, health-checked, nothing secret or build-only shipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, assert_ok, load_yaml, run, tool

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
IMAGES = ("collector", "rule-engine", "notifier", "device-manager", "simulator", "migrate")
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|ACCESS_KEY|PRIVATE)", re.IGNORECASE)


def dockerfiles() -> list[Path]:
    """Every Dockerfile in the repository (outside virtualenvs)."""
    found = [p for p in ROOT.rglob("*Dockerfile*") if ".venv" not in p.parts and p.is_file()]
    return sorted(found)


def stages(path: Path) -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            current = match.group(2) or f"<final:{match.group(1)}>"
            result[current] = [line]
        elif current:
            result[current].append(line)
    return result


def global_args(path: Path) -> dict[str, str]:
    """ARG defaults declared before the first FROM."""
    args = {}
    for line in path.read_text().splitlines():
        if line.startswith("FROM"):
            break
        match = re.match(r"ARG\s+(\w+)=(\S+)", line)
        if match:
            args[match.group(1)] = match.group(2)
    return args


def test_there_is_a_dockerfile():
    assert DOCKERFILE in dockerfiles()


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_passes(path):
    assert_ok(run(tool("hadolint"), "--failure-threshold", "info", path))


def test_base_image_is_pinned_python_311_slim_bookworm():
    image = global_args(DOCKERFILE)["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    for name, lines in stages(DOCKERFILE).items():
        assert "latest" not in lines[0], f"{name}: {lines[0]}"


def test_every_image_is_a_small_stage_on_the_shared_runtime_running_as_non_root():
    all_stages = stages(DOCKERFILE)
    runtime = all_stages["runtime"]
    assert not any(line.startswith("COPY") for line in runtime), "the runtime stage copies nothing from the context"
    assert any(line.startswith("HEALTHCHECK") and "/healthz" in line for line in runtime)
    for image in IMAGES:
        lines = all_stages[image]
        assert lines[0].split()[1] == "runtime", f"{image} must build FROM runtime"
        users = [line.split()[1] for line in lines if line.startswith("USER")]
        assert users, f"{image}: no USER"
        assert users[-1].split(":")[0] not in {"root", "0"}, f"{image} runs as root"
        assert any(line.startswith("CMD") for line in lines), f"{image}: no CMD"
        if image != "migrate":
            assert any(line.startswith("ENV HEALTH_PORT=") for line in lines), f"{image}: no HEALTH_PORT"
            assert any(line.startswith("EXPOSE") for line in lines), f"{image}: no EXPOSE"
        # Wheels come in via a bind mount from the builder, never a COPY into the image.
        assert not any(line.startswith(("COPY", "ADD")) for line in lines), f"{image} copies files into the image"
    final = list(all_stages)[-1]
    assert final == "<final:${SERVICE}>", "the last stage selects the image from the SERVICE build argument"
    assert global_args(DOCKERFILE)["SERVICE"] in IMAGES


def test_health_ports_match_the_documented_defaults():
    ports = {"collector": "9110", "rule-engine": "9120", "notifier": "9130", "device-manager": "8080",
             "simulator": "9140"}
    all_stages = stages(DOCKERFILE)
    for image, port in ports.items():
        assert f"ENV HEALTH_PORT={port}" in all_stages[image]


def test_no_secrets_in_build_arguments_or_environment():
    for name, lines in stages(DOCKERFILE).items():
        for line in lines:
            if line.startswith(("ARG", "ENV")):
                assert not SECRET_NAME.search(line), f"{name}: {line}"


def test_compose_builds_only_targets_that_exist():
    compose = load_yaml(ROOT / "docker-compose.yml")
    names = set(stages(DOCKERFILE))
    for service, spec in compose["services"].items():
        build = spec.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE, service
            assert build["target"] in names, service


def test_dockerignore_keeps_secrets_and_clutter_out_of_the_context():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    first = next(line for line in lines if line and not line.startswith("#"))
    assert first == "*", ".dockerignore should start from an allow-list (*)"
    copied = set(re.findall(r"^COPY\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE))
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert copied <= allowed, f"COPY sources not allowed by .dockerignore: {copied - allowed}"
    assert not any(entry.startswith(".env") for entry in allowed)


PACKAGES = ("libs/iothub", "services/collector", "services/rule-engine", "services/notifier",
            "services/device-manager", "simulator")


@pytest.mark.parametrize("project", PACKAGES)
def test_wheels_carry_every_data_file_the_package_needs(project):
    """The images install wheels: a non-Python file (SQL, static assets) not in package-data is missing at runtime."""
    import glob
    import tomllib

    root = ROOT / project
    config = tomllib.loads((root / "pyproject.toml").read_text()).get("tool", {}).get("setuptools", {})
    covered = set()
    for package, patterns in config.get("package-data", {}).items():
        base = root / package.replace(".", "/")
        for pattern in patterns:
            covered.update(base / match for match in glob.glob(pattern, root_dir=base, recursive=True))
    packages = [p for p in root.iterdir() if (p / "__init__.py").exists()]
    data = [f for package in packages for f in package.rglob("*")
            if f.is_file() and f.suffix not in {".py", ".pyc"} and "__pycache__" not in f.parts]
    missing = [str(f.relative_to(ROOT)) for f in data if f not in covered]
    assert not missing, (f"{project}/pyproject.toml lacks [tool.setuptools.package-data] for: {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''}")
