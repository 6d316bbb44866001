"""Reading configured CSS selectors with selectolax: `"css @attr"` specs, text, links and the page base.

Does no I/O. A spec is a CSS selector, optionally followed by `@attr` to read an attribute instead of
the text (`"a.permalink @href"`); a spec of only `@attr` reads the context node itself (`"@id"`).
Selectors are relative to a context node and, as in a browser's `querySelectorAll`, never match the
context node itself. Matches lying inside an `excluded` node (a nested comment, say) are skipped, so an
item's fields are read from that item only.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from monitor.collectors.htmltext import html_to_text
from monitor.collectors.links import absolute_url
from monitor.collectors.structure import bound_html
from monitor.exceptions import ParseError

if TYPE_CHECKING:  # selectolax is loaded to check a selector or parse a page, not to read a config without one
    from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = [
    "FieldSpec",
    "document",
    "nodes_with",
    "page_base",
    "parse_spec",
    "select",
    "selector_problem",
    "spec_text",
    "spec_values",
]

_SPEC = re.compile(r"^(?P<css>.*?)(?:^|\s+)@(?P<attr>[A-Za-z_][\w:.-]*)$", re.DOTALL)
_MAX_DEPTH = 256  # ancestor walks stop here: lexbor trees are not deeper in practice
_MAX_MATCHES = 5_000  # one selector on one page: more is a hostile or mistaken page; the rest are ignored


@dataclass(frozen=True)
class FieldSpec:
    """One parsed selector spec."""

    css: str  # CSS selector; "" means the context node itself
    attr: str | None  # attribute to read; None reads the text

    def __str__(self) -> str:
        if self.attr is None:
            return self.css
        return f"{self.css} @{self.attr}".strip()


def parse_spec(spec: str, *, default_attr: str | None = None) -> FieldSpec:
    """`"a.x @href"` -> FieldSpec("a.x", "href"); without `@attr`, `default_attr` applies."""
    spec = spec.strip()
    match = _SPEC.match(spec)
    if match:
        return FieldSpec(match["css"].strip(), match["attr"].lower())
    return FieldSpec(spec, default_attr)


def selector_problem(spec: str, *, allow_self: bool = False) -> str | None:
    """Why a configured spec cannot be used (an invalid or empty CSS selector), or None when it can.
    `allow_self`: a spec of only `@attr`, which reads the item's own element, is fine here."""
    parsed = parse_spec(spec)
    if not parsed.css:
        return None if allow_self and parsed.attr else f"empty CSS selector {spec!r}"
    from selectolax.lexbor import SelectolaxError  # noqa: PLC0415  # see TYPE_CHECKING above

    try:
        _compiler().css(parsed.css)
    except SelectolaxError:
        return f"invalid CSS selector {parsed.css!r}"
    return None


@cache
def _compiler() -> LexborHTMLParser:
    """An empty document: compiling a selector against it finds syntax errors."""
    return document("")[0]


def document(html: str) -> tuple[LexborHTMLParser, str | None]:
    """The parsed page, cut first at any structure limit (structure.py), and the warning when it was cut."""
    from selectolax.lexbor import LexborHTMLParser  # noqa: PLC0415  # see TYPE_CHECKING above

    bounded, warning = bound_html(html)
    return LexborHTMLParser(bounded), warning


def select(context: LexborNode | LexborHTMLParser, css: str, *, excluded: Collection[int] = ()) -> list[LexborNode]:
    """Nodes under `context` matching `css` (not `context` itself), in document order, skipping any
    inside an `excluded` node (by `mem_id`). ParseError for an invalid selector."""
    from selectolax.lexbor import LexborNode, SelectolaxError  # noqa: PLC0415  # see TYPE_CHECKING above

    try:
        found = context.css(css)
    except SelectolaxError as exc:
        raise ParseError(f"invalid CSS selector {css!r}: {exc}") from exc
    own = context.mem_id if isinstance(context, LexborNode) else None
    out = []
    for node in found[:_MAX_MATCHES]:
        if node.mem_id == own:
            continue
        if excluded and _inside(node, excluded, stop=own):
            continue
        out.append(node)
    return out


def _inside(node: LexborNode, excluded: Collection[int], stop: int | None) -> bool:
    """Whether `node` or an ancestor below `stop` is excluded."""
    current: LexborNode | None = node
    for _ in range(_MAX_DEPTH):
        if current is None or current.mem_id == stop:
            return False
        if current.mem_id in excluded:
            return True
        current = current.parent
    return False


def _matched(context: LexborNode, spec: FieldSpec, excluded: Collection[int]) -> list[LexborNode]:
    return [context] if not spec.css else select(context, spec.css, excluded=excluded)


def spec_values(
    context: LexborNode, spec: FieldSpec, *, excluded: Collection[int] = (), first: bool = False
) -> list[str]:
    """The text (HTML turned into text) or attribute value of each match, empty ones left out.

    A match inside an earlier match is skipped: its text is already in the outer one's.
    """
    values = []
    taken: set[int] = set()
    own = context.mem_id
    for node in _matched(context, spec, excluded):
        if taken and spec.attr is None and _inside(node, taken, stop=own):
            continue
        value = _value(node, spec.attr)
        if value:
            values.append(value)
            taken.add(node.mem_id)
            if first:
                break
    return values


def spec_text(
    context: LexborNode, spec: FieldSpec, *, excluded: Collection[int] = (), first: bool = False
) -> str | None:
    """The first value (`first`) or all values joined by line breaks; None when nothing matched."""
    values = spec_values(context, spec, excluded=excluded, first=first)
    return "\n".join(values) if values else None


def _value(node: LexborNode, attr: str | None) -> str:
    if attr is None:
        return html_to_text(node.html or "", checked=True)
    value = node.attributes.get(attr)
    return value.strip() if value else ""


def nodes_with(context: LexborNode, spec: FieldSpec, *, excluded: Collection[int] = ()) -> Iterator[LexborNode]:
    """Matched nodes (for callers that need more than the value, e.g. a date's fallback attributes)."""
    yield from _matched(context, spec, excluded)


def page_base(tree: LexborHTMLParser, page_url: str) -> str:
    """The base for relative links: `<base href>` resolved against the page URL, else the page URL."""
    base = tree.css_first("base[href]")
    href = base.attributes.get("href") if base is not None else None
    if href and href.strip():
        resolved = absolute_url(href, page_url, keep_fragment=False)
        if resolved:
            return resolved
    return page_url
