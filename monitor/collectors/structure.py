"""Structure limits for HTML, checked before a parser sees it: a hostile page is cut, not parsed for minutes.

Does no I/O. Why: lexbor (selectolax) spends time on each start tag in proportion to how many elements
are open (its tree builder scans the stack of open elements), so 1.4 MB of unclosed `<div>`s costs
minutes; and it checks each new attribute against the element's earlier ones, so one element with
40,000 attributes costs seconds. `bound_html` finds the first place where a page passes a limit and
cuts the page there; the caller parses what is before it and records the warning.

Cheap first: a page with at most WALK_FROM `<` cannot nest deep enough to cost more than a few
hundredths of a second, so only larger pages are walked tag by tag; and only tags longer than
2 * MAX_ATTRIBUTES characters can hold too many attributes, so only those are counted.

Comments and the raw text of `<script>`, `<style>`, `<textarea>` and their kind are skipped, as the
tokenizer skips them (a script's strings full of `<div>` open nothing). The depth walked is an upper
bound of the parser's: each element name's open count (start tags minus the end tags that can close
one), not counting void elements (`<br>`), elements whose end tag is
optional (`<p>`, `<li>`, `<td>`, ...: the parser closes them itself) and self-closed elements inside
`<svg>` and `<math>`. A stray end tag closes nothing, so it cannot hide depth. Browsers stop nesting at
a similar depth (Blink's parser at 512 levels); real pages stay under 250. What these checks miss
(a page built to slip past them) still ends at the worker's time limit (workers.py).
"""

from __future__ import annotations

import re
from itertools import islice

__all__ = ["MAX_ATTRIBUTES", "MAX_DEPTH", "MAX_TAGS", "WALK_FROM", "bound_html"]

MAX_DEPTH = 512  # nested open elements
MAX_TAGS = 250_000  # start and end tags in one document (a 300 KB news page has about 3,000)
MAX_ATTRIBUTES = 256  # on one element (real ones have under 30)
WALK_FROM = 5_000  # pages with more `<` than this are walked for depth (5,000 nested divs parse in 0.05 s)

# A tag: "/" for an end tag, its name, and "/" when it ends "/>"; possessive: no backtracking however the
# tag looks. A comment, or an element whose content is raw text (a script's strings, a style sheet), is one
# token with no name, as the HTML tokenizer reads it: the tags written inside it open nothing.
_TAG = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<(script|style|textarea|title|xmp|iframe|noembed|noframes|noscript)\b[^>]*+>.*?(?:</\1\s*+>|\Z)"
    r"|<(/?)([A-Za-z][^\s/>]*+)[^>]*+(?<=(/))?>",
    re.IGNORECASE | re.DOTALL,
)
_LONG_TAG = re.compile(r"<[A-Za-z][^>]{%d}" % (2 * MAX_ATTRIBUTES - 1))  # noqa: UP031
# A start tag with more than MAX_ATTRIBUTES attributes, read as the HTML tokenizer reads them (a quoted
# value may hold ">"); matched only where a long tag starts.
_CROWDED = re.compile(
    r"<[A-Za-z][^\s/>]*+(?>[\s/]++[^\s/>=][^\s/>=]*+(?:\s*+=\s*+(?:\"[^\"]*+\"|'[^']*+'|[^\s>]*+))?+){%d}"  # noqa: UP031
    % (MAX_ATTRIBUTES + 1)
)
_VOID = frozenset(
    {"area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img", "input",
     "isindex", "keygen", "link", "meta", "param", "source", "track", "wbr"}
)  # fmt: skip
_OPTIONAL_END = frozenset(
    {"p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "tbody", "thead", "tfoot", "colgroup",
     "caption", "rb", "rt", "rtc", "rp", "html", "head", "body"}
)  # fmt: skip
_UNCOUNTED = _VOID | _OPTIONAL_END
_FOREIGN = frozenset({"svg", "math"})
# Start tags that end foreign content (the HTML standard's list): inside <svg> they open HTML elements again.
_BREAKOUT = frozenset(
    {"b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em", "embed", "h1",
     "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing", "menu", "meta", "nobr", "ol", "p",
     "pre", "ruby", "s", "small", "span", "strong", "strike", "sub", "sup", "table", "tt", "u", "ul", "var"}
)  # fmt: skip


def bound_html(html: str) -> tuple[str, str | None]:
    """`html` unchanged and None; or, past a structure limit, the part before it and a one-line warning."""
    cut, reason = _depth_cut(html) if html.count("<") > WALK_FROM else (None, "")
    end = len(html) if cut is None else cut
    for long_tag in _LONG_TAG.finditer(html, 0, end):
        if _CROWDED.match(html, long_tag.start()):
            cut, reason = long_tag.start(), f"an element with more than {MAX_ATTRIBUTES} attributes"
            break
    if cut is None:
        return html, None
    return html[:cut], (
        f"the page has {reason} at character {cut:,} of {len(html):,}: only the part before it was read "
        "(a hostile or broken page)"
    )


def _depth_cut(html: str) -> tuple[int | None, str]:
    """Where the page first passes MAX_DEPTH or MAX_TAGS, and which; (None, "") when it never does."""
    tags = _TAG.findall(html)  # one pass in C; a position is looked up only for a page that is cut
    index, reason = _first_too_deep(tags), f"elements nested more than {MAX_DEPTH} deep"
    if len(tags) > MAX_TAGS and (index is None or index > MAX_TAGS):
        index, reason = MAX_TAGS, f"more than {MAX_TAGS:,} tags"
    if index is None:
        return None, ""
    return next(islice(_TAG.finditer(html), index, None)).start(), reason


def _first_too_deep(tags: list[tuple[str, str, str, str]]) -> int | None:
    """The index of the start tag that takes the depth past MAX_DEPTH (module docstring), if any."""
    opened: dict[str, int] = {}
    depth = foreign = 0
    for index, (_raw_text, close, raw, self_closed) in enumerate(tags):
        name = raw.lower()
        if not name or name in _UNCOUNTED:  # a comment or raw text, or an element that opens no level
            continue
        if close:
            count = opened.get(name, 0)
            if count:
                opened[name] = count - 1
                depth -= 1
                if name in _FOREIGN:
                    foreign -= 1
            continue
        if foreign and name in _BREAKOUT:
            foreign = 0
        if self_closed and foreign:
            continue
        opened[name] = opened.get(name, 0) + 1
        depth += 1
        if name in _FOREIGN:
            foreign += 1
        if depth > MAX_DEPTH:
            return index
    return None
