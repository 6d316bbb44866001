"""Reading config YAML: one parse (C composer where present), line numbers kept, aliases bounded, tags refused."""

from __future__ import annotations

import resource
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.exceptions import ConfigError
from monitor.yamldoc import FAST_LOADER, MIN_ALIAS_BUDGET, PURE_LOADER, read_yaml
from tests.conftest import make_config, monitor_cmd
from tests.test_config import VALID

LOADERS = pytest.mark.parametrize("loader", [FAST_LOADER, PURE_LOADER], ids=["fast", "pure"])


def billion_laughs(levels: int, size: int) -> str:
    """The classic alias bomb as a config whose topics are the laughs: `levels` lists of nine aliases of the
    list before, 9**levels values in all, padded with a comment to exactly `size` bytes."""
    names = "abcdefghijklmnop"
    lines = ["topics:", f"  a: &a [{', '.join(['lol'] * 9)}]"]
    for level in range(1, levels):
        refs = ", ".join([f"*{names[level - 1]}"] * 9)
        lines.append(f"  {names[level]}: &{names[level]} [{refs}]")
    body = "\n".join([*lines, "sources: []"]) + "\n"
    padding = size - len(body.encode()) - 1
    assert padding >= 2, "the bomb does not fit in the size"
    return "#" + " " * (padding - 1) + "\n" + body


@pytest.mark.parametrize(("levels", "size"), [(9, 495), (10, 547)])
def test_billion_laughs_is_refused_with_a_config_error(tmp_path: Path, levels: int, size: int) -> None:
    text = billion_laughs(levels, size)
    assert len(text.encode()) == size
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, text)
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert problem.startswith("line ") and "aliases expand" in problem and "refused" in problem


def _limit_memory() -> None:  # a regression must fail this test, not take the machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize(("levels", "size"), [(9, 495), (10, 547)])
def test_monitor_check_on_an_alias_bomb_exits_2_with_one_line(tmp_path: Path, levels: int, size: int) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(billion_laughs(levels, size), encoding="utf-8")
    done = subprocess.run(
        monitor_cmd(config, "check"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=_limit_memory,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    problems = [line for line in done.stderr.splitlines() if line.startswith("  ")]
    assert len(problems) == 1 and "aliases expand" in problems[0], done.stderr


def test_aliases_within_the_budget_load_and_are_expanded(tmp_path: Path) -> None:
    width = 9
    text = "topics:\n  t: &t [" + ", ".join(f"w{i}" for i in range(width)) + "]\n"
    text += "  u: *t\n  v: *t\nsources: []\n"
    config = make_config(tmp_path, text)
    assert [len(t.any) for t in config.topics] == [width] * 3


def test_budget_is_a_bound_on_added_values() -> None:
    # one list of 100 values referred to by N aliases adds about 101 * N values
    def doc(aliases: int) -> str:
        return "a: &a [" + ",".join(["x"] * 100) + "]\nb: [" + ",".join(["*a"] * aliases) + "]\n"

    assert read_yaml(doc(50)).data["b"][49] == ["x"] * 100  # about 5,000 added
    with pytest.raises(ConfigError, match="aliases expand"):
        read_yaml(doc(2 * MIN_ALIAS_BUDGET // 100))


def test_a_legitimate_template_with_merge_keys_loads(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        """
        topics:
          separatism: &terms [separatism, separatist*]
          copy: *terms
        sources:
          - &feed {name: one, type: feed, url: "https://e.org/1", interval: 20m}
          - <<: *feed
            name: two
            url: "https://e.org/2"
    """,
    )
    assert config.topics[1].any == ("separatism", "separatist*")
    assert [(s.name, s.url, s.interval.total_seconds()) for s in config.sources] == [
        ("one", "https://e.org/1", 1200),
        ("two", "https://e.org/2", 1200),
    ]


def test_errors_in_merged_keys_are_located_at_the_merge(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(
            tmp_path,
            """
            topics: {t: [x]}
            x-template: &base
              type: feed
              interval: 5 parsecs
            sources:
              - <<: *base
                name: one
                url: "https://e.org/1"
        """,
        )
    problems = info.value.problems
    assert "x-template (line 3): unknown key" in problems[0]
    assert any(p.startswith("sources[0].interval (line 7):") and "parsecs" in p for p in problems), problems


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"line 1: a YAML alias refers to itself"):
        read_yaml("a: &a [x, *a]\n")
    with pytest.raises(ConfigError, match="refers to itself"):
        read_yaml("a: &a {b: {c: *a}}\n")


@LOADERS
def test_both_loaders_give_the_same_data_lines_and_problems(loader: Any) -> None:
    reference = yaml.safe_load(VALID)
    document = read_yaml(VALID, loader)
    assert document.data == reference
    line_of: dict[str, int] = {}
    for number, text in enumerate(VALID.splitlines(), start=1):
        line_of.setdefault(text.strip().split(":")[0], number)  # the first occurrence
    assert document.lines[("sources", 1, "fields", "link")] == line_of["fields"]  # a flow mapping: its line
    assert document.lines[("alerts", "email", "sender")] == line_of["sender"]
    reddit = next(n for n, text in enumerate(VALID.splitlines(), start=1) if "reddit.com/r/Kazakhstan" in text)
    assert document.lines[("sources", 4, "url")] == reddit
    dup = read_yaml("a: 1\nb:\n  c: 2\n  c: 3\n", loader)
    assert dup.problems == ("b.c (line 4): duplicate key (the later one would win)",)


@LOADERS
def test_python_tags_are_refused_with_a_line(loader: Any) -> None:
    with pytest.raises(ConfigError, match=r"line 2, column 4: YAML syntax error: could not determine a constructor"):
        read_yaml("a: 1\nb: !!python/object/apply:os.system [echo hi]\n", loader)


@LOADERS
def test_deep_nesting_is_a_config_error(loader: Any) -> None:
    depth = 50_000
    with pytest.raises(ConfigError):
        read_yaml("[" * depth + "]" * depth, loader)


def test_an_empty_document_is_empty() -> None:
    assert read_yaml("").data is None
    assert read_yaml("# only a comment\n").lines == {}


def test_the_line_index_visits_each_node_once() -> None:
    text = textwrap.dedent(
        """
        a: &a [1, 2]
        b: &b [*a, *a]
        c: [*b, *b]
        """
    )
    lines = read_yaml(text).lines
    assert lines[("c",)] == 4
    assert lines[("c", 0)] == 3 and lines[("c", 1)] == 3  # a list item reached through an alias: at the anchor
    assert ("c", 0, 0) not in lines  # not walked again through the alias
