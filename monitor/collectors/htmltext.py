"""HTML fragment -> clean plain text, with selectolax (lexbor).

Does no I/O. Scripts, styles and other non-text elements are dropped with their content; block
elements (p, div, li, h1-h6, tr, br, ...) end a line; entities are decoded; runs of whitespace become
one space; the result's lines are separated by "\\n" (paragraph breaks), with no empty lines.
Text that holds no markup is only tidied the same way (its own line breaks kept), not parsed.
"""

from __future__ import annotations

import html
import re

from monitor.collectors.structure import bound_html

__all__ = ["html_to_text", "looks_like_html", "tidy_text"]

_BREAK = "\ue000"  # private-use mark for a block boundary, put in before parsing, split on after
_BLOCK_TAGS = (
    "address|article|aside|blockquote|br|caption|dd|details|dialog|div|dl|dt|fieldset|figcaption|figure"
    "|footer|form|h[1-6]|header|hr|li|main|nav|ol|p|pre|section|summary|table|tbody|td|tfoot|th|thead"
    "|tr|ul"
)
_BLOCK_TAG = re.compile(r"<(?=/?(?:" + _BLOCK_TAGS + r")[\s>/])", re.IGNORECASE)
_DROPPED = [
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math", "head",
    "title", "select", "button", "audio", "video", "canvas", "noembed", "noframes", "xmp",
]  # fmt: skip
_DROPPED_TAG = re.compile(r"<(?:" + "|".join(_DROPPED) + r")[\s>/]", re.IGNORECASE)
_SCRIPT_OPEN = re.compile(r"<(?=script)", re.IGNORECASE)
_TAG_START = re.compile(r"<[a-zA-Z!/?]")
# Markup that needs no HTML parser: these tags (attributes quoted or not: none of them puts text on the page),
# and a few references. A fragment made of text and only these reads the same with them removed (the block ones
# marked) and the references decoded. No table tags: a table moves stray text out of itself.
_SIMPLE_TAG = re.compile(
    r"</?(?:p|br|div|li|ul|ol|h[1-6]|blockquote|pre|figure|figcaption|hr|b|i|em|strong|u|span|small|sub|sup|a|img"
    r"|code)(?:\s+[a-z][\w:.-]*(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*\s*/?>",
    re.I,
)
_SIMPLE_REF = re.compile(
    r"&(?:amp|lt|gt|quot|apos|nbsp|laquo|raquo|mdash|ndash|hellip|#(?:3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6]|160|8[0-9]{3}));"
)
_MAX_INPUT = 2 * 1024 * 1024  # one post's HTML beyond this is cut: bounds the work on a hostile feed


def looks_like_html(text: str) -> bool:
    """True when `text` holds something that starts a tag, comment or declaration."""
    return _TAG_START.search(text) is not None


def html_to_text(fragment: str, *, checked: bool = False) -> str:
    """Plain text of an HTML fragment (or of plain text, tidied); never raises. A fragment past the
    structure limits (structure.py) is read up to them; `checked`: it comes from a page already bounded."""
    if not fragment:
        return ""
    fragment = fragment[:_MAX_INPUT]
    if not checked:
        fragment = bound_html(fragment)[0]
    if not looks_like_html(fragment):
        return _defuse(tidy_text(html.unescape(fragment) if "&" in fragment else fragment))
    marked = _BLOCK_TAG.sub(_BREAK + "<", fragment.replace(_BREAK, ""))  # constant: no Python per match
    plain = _SIMPLE_TAG.sub("", marked)
    if "<" not in plain and "\x00" not in plain and "\r" not in plain:  # no parser needed (see _SIMPLE_TAG)
        if "&" in plain:
            if _SIMPLE_REF.sub("", plain).count("&"):
                return _parsed(marked, fragment)
            plain = html.unescape(plain)
        return _defuse(_join_lines(plain.split(_BREAK)))
    return _parsed(marked, fragment)


def _parsed(marked: str, fragment: str) -> str:
    from selectolax.lexbor import LexborHTMLParser  # noqa: PLC0415  # loaded to parse, not to read the config

    tree = LexborHTMLParser(marked)
    if _DROPPED_TAG.search(fragment):
        tree.strip_tags(_DROPPED, recursive=True)
    root = tree.body if tree.body is not None else tree.root
    if root is None:
        return ""
    # in HTML a line break in the source is a space; only block boundaries break lines
    return _defuse(_join_lines(root.text(deep=True).split(_BREAK)))


def tidy_text(text: str) -> str:
    """Collapse runs of spaces and tabs, drop empty lines, keep line breaks as paragraph breaks."""
    return _join_lines(text.splitlines())


def _defuse(text: str) -> str:
    """Text that spelled out "&lt;script" reads "< script": no consumer can mistake it for markup."""
    if "<" in text:
        return _SCRIPT_OPEN.sub("< ", text)
    return text


def _join_lines(lines: list[str]) -> str:
    out = []
    for line in lines:
        words = line.split()  # splits on every Unicode space, \xa0 included
        if words:
            out.append(" ".join(words))
    return "\n".join(out)
