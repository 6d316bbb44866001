"""The README's fault table names a test for every row, and each named test exists (the table cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fault_rows() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## What happens when things go wrong", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| fault")]


def test_every_fault_row_names_tests_that_exist() -> None:
    rows = fault_rows()
    assert len(rows) >= 15
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 4, row
        named = re.findall(r"`(test_\w+\.py)?::(test_\w+)`", cells[3])  # `::name` continues the module before
        assert named, f"no test named in: {row}"
        module = ""
        for given, name in named:
            module = given or module
            assert module, row
            source = (REPO / "tests" / module).read_text(encoding="utf-8")
            assert re.search(rf"^def {name}\(", source, re.M), f"{module}::{name} (README fault table) not found"
