"""Small promises of the command line, each tried as a user would: subprocesses, real files and sockets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.store import open_store
from tests.conftest import invoke, write_config
from tests.test_export import add

SECRETS_CONFIG = """
topics: {t: [x]}
sources:
  - {name: wall, type: vk, domain: somecommunity, token_env: MONITOR_TEST_VK_TOKEN}
  - {name: spare, type: vk, domain: other, token_env: MONITOR_TEST_VK_TOKEN, enabled: false}
alerts:
  email: {host: 127.0.0.1, sender: m@example.org, to: [a@example.org], username: me,
          password_env: MONITOR_TEST_SMTP_PASSWORD}
  notify:
    - {name: tg, url_env: MONITOR_TEST_NOTIFY_TG}
"""
SECRET_NAMES = ("MONITOR_TEST_VK_TOKEN", "MONITOR_TEST_SMTP_PASSWORD", "MONITOR_TEST_NOTIFY_TG")


def test_check_warns_about_secrets_the_environment_lacks_and_still_exits_0(tmp_path: Path) -> None:
    config = write_config(tmp_path, SECRETS_CONFIG)
    assert not any(name in os.environ for name in SECRET_NAMES)  # the test's own names: unset here
    result = invoke(config, "check")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: sources[0].token_env (wall): MONITOR_TEST_VK_TOKEN is not set in the environment; "
        "this source will fail until it is",
        "warning: alerts.notify[0].url_env (tg): MONITOR_TEST_NOTIFY_TG is not set in the environment; "
        "this channel cannot send until it is",
        "warning: alerts.email.password_env: MONITOR_TEST_SMTP_PASSWORD is not set in the environment, "
        "but username 'me' is: the SMTP login will fail",
    ]
    secrets = {
        "MONITOR_TEST_VK_TOKEN": "t0ken",
        "MONITOR_TEST_SMTP_PASSWORD": "pw",
        "MONITOR_TEST_NOTIFY_TG": "json://x",
    }
    quiet = invoke(config, "check", env=secrets)
    assert quiet.returncode == 0 and "warning" not in quiet.stderr, quiet.stderr
    assert not any(value in quiet.stdout + quiet.stderr for value in secrets.values())  # never echoed


def test_check_refuses_an_invalid_to_address(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        """
        topics: {t: [x]}
        sources: []
        alerts:
          email: {host: h, sender: m@example.org, to: [a@example.org, "analyst at example.org"]}
        """,
    )
    result = invoke(config, "check")
    assert result.returncode == 2
    assert "alerts.email.to[1] (line 5): 'analyst at example.org' is not an email address" in result.stderr


TOPICS_CONFIG = """
store: store.db
topics:
  separatism: [separatism, сепаратист*]
  peoples-council: ["People's Council", "Халық кеңес*"]
sources:
  - {name: news, type: feed, url: "http://127.0.0.1:9/rss"}
"""
TOPIC_COMMANDS = {
    "search": ["search", "council"],
    "stats": ["stats"],
    "export": ["export"],
    "plot": ["plot", "--since", "7d", "-o", "chart.png"],
}


@pytest.fixture
def topics_config(tmp_path: Path) -> Path:
    config = write_config(tmp_path, TOPICS_CONFIG)
    with open_store(tmp_path / "store.db") as store:
        add(store, "a", topics={"separatism": "separatism"}, title="Council on separatism")
        add(store, "b", topics={"retired": "council"})  # a topic since removed from the config: still known
    return config


@pytest.mark.parametrize("command", TOPIC_COMMANDS)
def test_an_unknown_topic_is_exit_2_naming_the_known_ones(topics_config: Path, command: str) -> None:
    args = TOPIC_COMMANDS[command]
    result = invoke(topics_config, *args, "--topic", "nosuch")
    assert result.returncode == 2, result.stderr
    assert "no topic named nosuch (known: peoples-council, retired, separatism)" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    known = invoke(topics_config, *args, "--topic", "retired")
    assert known.returncode == 0, known.stderr


HEAVY = {"rich", "numpy", "matplotlib", "httpx", "lxml", "selectolax", "apscheduler", "msgspec", "yaml", "asyncio"}


def imported_packages(*args: str, cwd: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", done.stderr, flags=re.MULTILINE)
    return {name.split(".")[0] for name in found}


def test_help_loads_none_of_the_heavy_libraries(tmp_path: Path) -> None:
    assert imported_packages("--help", cwd=tmp_path) & HEAVY == set()
    assert imported_packages("search", "--help", cwd=tmp_path) & HEAVY == set()


def test_status_as_json_needs_neither_rich_nor_the_fetcher(topics_config: Path) -> None:
    loaded = imported_packages("--config", str(topics_config), "status", "--format", "json", cwd=topics_config.parent)
    assert {"msgspec", "yaml"} <= loaded  # it reads the config ...
    assert loaded & {"rich", "httpx", "matplotlib", "apscheduler", "asyncio", "lxml", "selectolax"} == set()
