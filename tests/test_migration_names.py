"""Migrations are applied by name, in the order of STEPS: numbers may have gaps (a step another branch owns
comes later), and a step added before one a store already has is still applied (on both backends)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from monitor.store import StoreURL, open_store
from monitor.store.postgres import schema as pg_schema
from monitor.store.sqlite import schema as sqlite_schema
from tests.conftest import sql


def test_sqlite_steps_have_a_gap_and_a_late_earlier_step_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "monitor.db"
    names = list(sqlite_schema.STEPS)
    assert "0006_topic_fingerprints" in names and "0005_topic_fingerprints" not in names
    with open_store(path):  # every step of this version, across the gap
        pass
    steps = dict(sqlite_schema.STEPS)
    late = {"0005_a_later_merge": lambda db: db.execute("CREATE TABLE merged_later (x INTEGER)")}
    at = names.index("0006_topic_fingerprints")
    monkeypatch.setattr(
        sqlite_schema, "STEPS", dict([*list(steps.items())[:at], *late.items(), *list(steps.items())[at:]])
    )
    with open_store(path) as store:
        assert sql(store, "SELECT count(*) FROM merged_later") == [(0,)]
        assert store.topic_fingerprints() == {}
    applied = [r[0] for r in sqlite3.connect(str(path)).execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert applied == [*names, "0005_a_later_merge"]  # applied once, after the steps the store already had


def test_postgres_steps_are_applied_by_name_across_a_gap(pg_url: StoreURL, monkeypatch: pytest.MonkeyPatch) -> None:
    names = list(pg_schema.STEPS)
    assert names[0] == "0001_initial" and "0006_topic_fingerprints" in names and "0002_a_later_merge" not in names
    with open_store(pg_url) as store:
        assert store.topic_fingerprints() == {}  # applied across the gap after 0001
        applied = [r[0] for r in sql(store, f"SELECT name FROM {pg_schema.MIGRATIONS_TABLE} ORDER BY name")]
    assert applied == names
    steps = list(pg_schema.STEPS.items())
    late = ("0002_a_later_merge", ["CREATE TABLE merged_later (x INT)"])
    monkeypatch.setattr(pg_schema, "STEPS", dict([steps[0], late, *steps[1:]]))
    with open_store(pg_url) as store:
        assert sql(store, "SELECT count(*) FROM merged_later") == [(0,)]
        applied = [r[0] for r in sql(store, f"SELECT name FROM {pg_schema.MIGRATIONS_TABLE} ORDER BY name")]
    assert applied == sorted([*names, "0002_a_later_merge"])  # applied once, beside the steps the store had
