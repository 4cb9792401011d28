"""The GitHub Actions workflow: valid, and running what the issue asks for (make test, images, InfluxDB contract)."""

from __future__ import annotations

from tests.deploy.conftest import ROOT, assert_ok, load_yaml, run, tool
from tests.deploy.test_docker import IMAGES

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def test_workflow_validates_against_the_github_workflow_schema():
    assert_ok(run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", WORKFLOW))


def test_workflow_runs_the_test_command_builds_every_image_and_the_influx_contract():
    jobs = load_yaml(WORKFLOW)["jobs"]
    steps = [step.get("run", "") for step in jobs["test"]["steps"]]
    assert any(".ci/run" in step or "make test" in step for step in steps)
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec make test")
    assert set(jobs["images"]["strategy"]["matrix"]["service"]) == set(IMAGES)
    influx = jobs["influx-contract"]
    assert influx["services"]["influxdb"]["image"].startswith("influxdb:2.7")
    assert influx["env"]["INFLUXDB_URL"]
    assert any("pytest -m influx" in step.get("run", "") for step in influx["steps"])
    for name, job in jobs.items():
        assert job.get("timeout-minutes"), f"{name} has no timeout"
