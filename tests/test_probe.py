"""`check --probe` in process: a collector that crashes is reported for its source while the others report too."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from monitor import probe
from monitor.collectors import SOURCE_TYPES
from tests.conftest import NOW, RawServer, make_config, respond


def test_a_crashing_collector_is_reported_and_the_rest_go_on(
    tmp_path: Path, raw_server: RawServer, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw_server.routes["/rss"] = respond(200, (corpus / "rss/en_bbc-world.xml").read_bytes())

    async def broken(*args: Any) -> Any:
        raise KeyError("a bug")

    # a bug stands in for any collector fault
    monkeypatch.setitem(SOURCE_TYPES, "mastodon", replace(SOURCE_TYPES["mastodon"], collect=broken))
    config = make_config(
        tmp_path,
        f"""
        topics: {{t: [x]}}
        sources:
          - {{name: bbc, type: feed, url: "{raw_server.url("/rss")}", robots: false}}
          - {{name: masto, type: mastodon, url: "{raw_server.url("/api/v1/timelines/public")}"}}
    """,
    )
    reports = {r.source: r for r in asyncio.run(probe.probe_sources(config, config.sources, clock=lambda: NOW))}
    assert reports["bbc"].answer == "ok" and reports["bbc"].items == 33
    assert reports["masto"].answer == "internal error: KeyError: 'a bug'"
