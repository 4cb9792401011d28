"""Shared helpers for the deployment checks: repository paths, YAML loading, running the offline validators."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def tool(name: str) -> str:
    """Absolute path of a command-line tool (the venv first, then PATH); fails the test when missing."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (make install system-deps; kubectl from your distribution)")
    return found


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a tool; the result keeps stdout/stderr for the assertion message."""
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          check=False)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    """Fail with the tool's own output when it exited non-zero."""
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"


def load_yaml(path: Path):
    """One YAML document (anchors and merge keys resolved)."""
    return yaml.safe_load(path.read_text())


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file; comments and blank lines skipped."""
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not KEY=VALUE: {raw!r}"
        values[key.strip()] = value.strip().strip("\"'")
    return values
