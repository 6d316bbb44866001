"""Loading a 200-source config: the previous reader (two pure-Python parses) against today's, in one run.

    .venv/bin/python bench/config_load_bench.py [--sources 200] [--rounds 7]

Generates a config with `--sources` sources of every type (feeds, HTML pages with selectors and comments,
Telegram, Mastodon, Reddit), two topics and an alerts block, then times, alternating A B A B:

- `before`: what `parse_config` did until this bench was written: `yaml.compose` with the pure-Python
  loader for the line index, then `yaml.safe_load` (a second pure-Python parse) for the data;
- `after`: `parse_config` as it is (one parse with libyaml's composer where PyYAML has it);
- `after, pure loader`: the same with the pure-Python composer forced (PyYAML built without libyaml).

The validation (monitor.schema) is the same in every case: `before` differs only in how the YAML is read.
Prints the median per load and the ratios against `before` measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import monitor.config
from monitor import yamldoc
from monitor.collectors import SOURCE_MODELS
from monitor.config import parse_config
from monitor.yamldoc import YamlDocument


def generate(sources: int) -> str:
    lines = [
        "store: storage/monitor.db",
        "topics:",
        "  separatism: [separatism, separatist*, сепаратизм*, сепаратист*]",
        "  peoples-council:",
        '    any: ["People\'s Council", "Народный совет*", "Халық кеңесі"]',
        "    none: [football]",
        "defaults: {interval: 15m, timeout: 30s, max_bytes: 10MB, per_host: 2}",
        "alerts:",
        "  window: 1h",
        "  email: {host: localhost, sender: monitor@example.org, to: [analyst@example.org]}",
        "sources:",
    ]
    for index in range(sources):
        kind = ("feed", "html", "telegram", "mastodon", "reddit")[index % 5]
        lines.append(f"  - name: source-{index}")
        lines.append(f"    type: {kind}")
        if kind == "feed":
            lines += [f"    url: https://news{index}.example.org/rss", "    interval: 10m"]
        elif kind == "html":
            lines += [
                f"    url: https://site{index}.example.org/news",
                "    follow: a.headline @href",
                "    items: article.post",
                "    fields:",
                "      title: h2",
                "      text: .body",
                "      link: a.permalink @href",
                "      published: time @datetime",
                "    comments:",
                "      items: .comment",
                "      fields: {text: .comment-body, author: .who, published: time @datetime}",
            ]
        elif kind == "telegram":
            lines.append(f"    channel: channel_{index}")
        elif kind == "mastodon":
            lines.append(f"    url: https://mastodon{index}.example/api/v1/timelines/tag/kazakhstan")
        else:
            lines.append(f"    url: https://www.reddit.com/r/sub{index}/new.json")
    return "\n".join(lines) + "\n"


def legacy_read(text: str) -> YamlDocument:
    """The reader before this change: a pure-Python compose for the lines, a second parse for the data."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    data = yaml.safe_load(text)
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                lines[(*path, str(key_node.value))] = key_node.start_mark.line + 1
                walk(value_node, (*path, str(key_node.value)))
        elif isinstance(node, yaml.SequenceNode):
            for index, child in enumerate(node.value):
                walk(child, (*path, index))

    if root is not None:
        walk(root, ())
    return YamlDocument(data, lines, ())


def pure_read(text: str) -> YamlDocument:
    return yamldoc.read_yaml(text, yamldoc.PURE_LOADER)


def timed(text: str, reader: Callable[[str], YamlDocument]) -> float:
    original = monitor.config.read_yaml  # type: ignore[attr-defined]
    monitor.config.read_yaml = reader  # type: ignore[attr-defined,assignment]
    try:
        start = time.perf_counter()
        config = parse_config(text, base_dir=Path("/tmp"), source_types=SOURCE_MODELS)
        elapsed = time.perf_counter() - start
    finally:
        monitor.config.read_yaml = original  # type: ignore[attr-defined]
    assert len(config.sources) > 0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    text = generate(args.sources)
    readers: dict[str, Callable[[str], YamlDocument]] = {
        "before (2 pure parses)": legacy_read,
        "after": yamldoc.read_yaml,
        "after, pure loader": pure_read,
    }
    same: list[Any] = [reader(text).data for reader in readers.values()]
    assert all(data == same[0] for data in same), "the readers disagree on the data"
    timed(text, yamldoc.read_yaml)  # warm-up: imports, the first validation
    times: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(args.rounds):
        for name, reader in readers.items():
            times[name].append(timed(text, reader))
    print(f"config: {args.sources} sources, {len(text.encode()):,} bytes, {text.count(chr(10)):,} lines")
    print(f"libyaml available: {yamldoc.FAST_LOADER is not yamldoc.PURE_LOADER}")
    base = statistics.median(times["before (2 pure parses)"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:24s} median {median * 1000:7.1f} ms  (min {min(samples) * 1000:.1f})  ratio {median / base:.2f}")


if __name__ == "__main__":
    main()
