"""The conformance table in docs/protocol.md names tests that exist, and a test for every requirement it meets."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r"`([^`]+)`")
CELL = re.compile(r"^([a-z_]+/test_[a-z_]+\.py)(?:::([a-z0-9_]+))?$")


def _rows() -> list[list[str]]:
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text.split("## Conformance with the fleet's firmware spec v2", 1)[1]
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| Requirement")]


def test_every_requirement_row_names_real_tests_or_says_it_is_not_met():
    rows = _rows()
    assert len(rows) >= 20
    for requirement, how, shown in rows:
        named = 0
        current = None  # a bare `test_...` belongs to the file named last before it
        for token in TOKEN.findall(shown):
            cell = CELL.match(token)
            if cell:
                current = ROOT / "tests" / cell[1]
                assert current.exists(), (requirement, token)
                name = cell[2]
            elif token.startswith("test_") and current is not None:
                name = token
            else:
                continue
            named += 1
            if name:
                assert f"def {name}(" in current.read_text(), (requirement, token)
        assert named or "not met" in how.lower() or "not yet" in shown.lower(), requirement
