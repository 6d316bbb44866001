"""YAML text -> plain data, with the line of every key path, parsed once and safe against alias bombs.

Pure: does no I/O; takes text, returns data (or raises ConfigError with one line per problem).

One parse: the document is composed into a node tree once (by libyaml's C composer where PyYAML has it,
else the pure-Python one), then checked, indexed and constructed from that same tree. Safe tags only
(`!!python/...` and other unknown tags are errors).

Aliases are allowed (an anchored template merged with `<<: *base` is good YAML) but bounded: every alias
is a reference, and walking the data as a tree visits the referenced part again each time, so nine
nested lists of nine aliases ("billion laughs") are 500 bytes of text and 10^9 values to validate. Before
anything walks the data, the size of the tree the aliases expand to is computed in one pass over the
distinct nodes (memoised, saturating), and a document whose aliases add more than `alias_budget(nodes)`
values is refused, as is an alias that refers to itself (a recursive structure). The line index visits
each distinct node once: a key under an aliased value is located at the key that uses the alias (a list item
that is an alias, at the anchor: the composed tree keeps no mark of the alias itself).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

import msgspec
import yaml

from monitor.exceptions import ConfigError

if TYPE_CHECKING:
    Loader: TypeAlias = type[yaml.SafeLoader] | type[yaml.CSafeLoader]

Loc = tuple[str | int, ...]
# libyaml's composer where PyYAML was built with it (about 10x faster), else the pure-Python one.
FAST_LOADER: Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
PURE_LOADER: Loader = yaml.SafeLoader
MIN_ALIAS_BUDGET = 10_000  # values aliases may add to any document ...
_SATURATED = 1 << 62  # expanded sizes are counted up to here, so the arithmetic stays small whatever the input


def alias_budget(nodes: int) -> int:
    """... or as many as the document holds itself, if that is more: the data stays linear in the text."""
    return max(MIN_ALIAS_BUDGET, nodes)


class YamlDocument(msgspec.Struct, frozen=True):
    data: Any  # what yaml.safe_load would return (None for an empty document)
    lines: dict[Loc, int]  # key path -> 1-based line: ("sources", 2, "url") -> 14
    problems: tuple[str, ...]  # duplicate keys, which PyYAML would silently resolve to the last one


def read_yaml(text: str, loader: Loader = FAST_LOADER) -> YamlDocument:
    """Parse `text` once; ConfigError (one line, with the YAML line) for a syntax error, a tag or an alias bomb."""
    parser = loader(text)
    try:
        root = parser.get_single_node()
        if root is None:
            return YamlDocument(None, {}, ())
        _check_aliases(root)
        lines, problems = _index_lines(root)
        data = parser.construct_document(root)
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(exc)) from exc
    except RecursionError as exc:  # the pure-Python composer on a deeply nested document
        raise ConfigError("YAML structure nested too deeply") from exc
    finally:
        parser.dispose()
    return YamlDocument(data, lines, tuple(problems))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}YAML syntax error: {problem}"


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield key_node
            yield value_node
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a recursive alias, or aliases that expand the data beyond `alias_budget`. Linear in the nodes."""
    size: dict[int, int] = {}  # id(node) -> values in its subtree with aliases expanded (saturating)
    on_path: set[int] = set()
    order: list[yaml.Node] = []  # post-order: every node after its children
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # iterative depth-first walk: a deep document cannot overflow the Python stack
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            size[key] = min(_SATURATED, 1 + sum(size[id(child)] for child in _children(node)))
            order.append(node)
            continue
        if key in size:
            continue
        if key in on_path:
            raise ConfigError(f"line {node.start_mark.line + 1}: a YAML alias refers to itself (a recursive structure)")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise ConfigError(
                    f"line {child.start_mark.line + 1}: a YAML alias refers to itself (a recursive structure)"
                )
            if id(child) not in size:
                stack.append((child, False))
    limit = len(size) + alias_budget(len(size))
    if size[id(root)] > limit:
        culprit = next(node for node in order if size[id(node)] > limit)  # the smallest part that is too big
        raise ConfigError(
            f"line {culprit.start_mark.line + 1}: YAML aliases expand this document to more than {limit:,} values "
            f"({len(size):,} written); refused (an alias bomb?)"
        )


def _index_lines(root: yaml.Node) -> tuple[dict[Loc, int], list[str]]:
    """Map each key path to its 1-based YAML line, visiting each distinct node once; report duplicate keys."""
    lines: dict[Loc, int] = {}
    problems: list[str] = []
    visited: set[int] = set()
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in visited:  # reached again through an alias: located where the alias is used
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            pending = []
            for key_node, value_node in node.value:
                key = str(key_node.value)
                lines[(*path, key)] = key_node.start_mark.line + 1
                if key in seen:
                    problems.append(f"{where((*path, key), lines)}: duplicate key (the later one would win)")
                seen.add(key)
                if key_node.tag == "tag:yaml.org,2002:merge":
                    _index_merged(value_node, path, lines, key_node.start_mark.line + 1)
                pending.append((value_node, (*path, key)))
            stack.extend(reversed(pending))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, (*path, index)) for index, child in reversed(list(enumerate(node.value))))
    return lines, problems


def _index_merged(value: yaml.Node, path: Loc, lines: dict[Loc, int], line: int) -> None:
    """`<<: *base` (or `<<: [*a, *b]`): the merged keys are located at the `<<` line unless written here too."""
    for mapping in value.value if isinstance(value, yaml.SequenceNode) else [value]:
        if isinstance(mapping, yaml.MappingNode):
            for key_node, _ in mapping.value:
                lines.setdefault((*path, str(key_node.value)), line)


def where(loc: Loc, lines: dict[Loc, int]) -> str:
    """`sources[2].url (line 14)`: the path, and the line of its deepest located ancestor."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    for cut in range(len(loc), 0, -1):
        if loc[:cut] in lines:
            return f"{text} (line {lines[loc[:cut]]})"
    return text
