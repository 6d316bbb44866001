"""Golden files of the JSON-API collectors: the RawItems read from a capture, beside the capture's name.

Regenerate after a deliberate change with `UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_collect_<api>.py`, then
read the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from monitor.types import RawItem

API_GOLDEN = Path(__file__).parent / "golden" / "api"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def as_golden(items: list[RawItem]) -> list[dict[str, Any]]:
    return [
        {
            "guid": i.guid,
            "url": i.url,
            "title": i.title,
            "text": i.text,
            "author": i.author,
            "published": i.published.isoformat() if i.published else None,
            "parent_ref": i.parent_ref,
            "extra": dict(i.extra),
        }
        for i in items
    ]


def check_golden(name: str, items: list[RawItem]) -> None:
    """Compare with tests/golden/api/<name> (or rewrite it, with UPDATE_GOLDEN=1)."""
    path = API_GOLDEN / name
    actual = as_golden(items)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1 and review it"
    assert actual == json.loads(path.read_text(encoding="utf-8"))
