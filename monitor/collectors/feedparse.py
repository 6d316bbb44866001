"""Feed bytes -> `ParsedFeed`: RSS 0.9x/1.0/2.0, Atom 1.0 (and 0.3), JSON Feed 1.0/1.1.

Pure: does no I/O; takes the body, the URL it came from and its Content-Type, returns items.

How a body is read (measured against feedparser and fastfeedparser in bench/feed_parsers.py):
  1. gzip bytes that the transport left compressed are inflated (bounded).
  2. JSON Feed is recognised by its Content-Type or its first character.
  3. The charset is chosen once in Python (`decode.choose_encoding`: BOM, valid UTF-8, HTTP charset,
     XML declaration, then detection), the body becomes UTF-8 and the XML declaration is removed, so
     that lying or misplaced declarations cannot mislead the XML parser.
  4. lxml parses strictly. If that fails, bare "&" and HTML named entities are escaped and it parses
     strictly again; if that fails too, lxml's recover mode keeps whatever is well-formed enough.
  5. Items are the direct children of the channel (RSS 2.0), of the root (RSS 0.9/1.0) or of the
     feed (Atom): items illegally nested in other items are not counted twice.

Security: the XML parser never expands entities, never loads a DTD or anything from the network or
the file system (billion-laughs and XXE documents stay inert), keeps libxml2's size and depth
limits (huge_tree off), and at most MAX_ITEMS items are read.

Nothing is hidden: `ParsedFeed.warnings` says when bytes were replaced while decoding, items were cut at
MAX_ITEMS, the document was read leniently (recover mode), it nested past libxml2's depth limit (an
error when that left no item at all), or it declared entities that were left unexpanded.

Known items are not parsed again (`known`, RSS and Atom): each item element gets a raw digest (blake2b, 16
bytes) over its serialised bytes (lxml writes the namespaces in scope into them) and everything the item's
parse inherits from the feed (see `_Digester`); an item whose digest the store already holds for this source
parsed, when it was stored, to exactly the post stored, so it is counted as a duplicate (`skipped`) and
nothing else is done with it. Any changed byte, or a changed inherited value, gives another digest: parsed.
"""

from __future__ import annotations

import hashlib
import html
import html.entities
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import urljoin

from lxml import etree

from monitor import __version__
from monitor.collectors.decode import decode, gunzip_if_gzip
from monitor.collectors.htmltext import html_to_text, tidy_text
from monitor.collectors.links import absolute_url
from monitor.dates import parse_date
from monitor.exceptions import ParseError
from monitor.normalize import post_key
from monitor.worktypes import RawItem

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "PARSER_VERSION", "ParsedFeed", "parse_feed"]

# Goes into every raw digest: bump it whenever what an item parses to (or its post key or content hash) may
# change, so that items stored by the older code are parsed again instead of being skipped as known. The
# package version goes in too: each release parses every item once more, whoever forgot to bump this.
PARSER_VERSION = f"feedparse-1 monitor-{__version__}".encode()

T = TypeVar("T")

MAX_ITEMS = 5000  # items read from one feed; a real feed has tens, a hostile one is cut here

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM03_NS = "http://purl.org/atom/ns#"
RSS1_NS = "http://purl.org/rss/1.0/"
RSS090_NS = "http://my.netscape.com/rdf/simple/0.9/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC_NS = "http://purl.org/dc/elements/1.1/"
DCTERMS_NS = "http://purl.org/dc/terms/"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
XHTML_NS = "http://www.w3.org/1999/xhtml"
YANDEX_NS = "http://news.yandex.ru"
TURBO_NS = "http://turbo.yandex.ru"
MEDIA_NSS = frozenset(
    {"http://search.yahoo.com/mrss/", "https://search.yahoo.com/mrss/", "http://search.yahoo.com/mrss"}
)
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
# Namespaces whose elements are never core RSS fields, whatever their local name.
_FOREIGN_NSS = frozenset({ATOM_NS, ATOM03_NS, DC_NS, DCTERMS_NS, CONTENT_NS, YANDEX_NS, TURBO_NS, XHTML_NS,
                          RDF_NS, "http://www.itunes.com/dtds/podcast-1.0.dtd", *MEDIA_NSS})  # fmt: skip


@dataclass(frozen=True)
class ParsedFeed:
    """What one feed document holds."""

    title: str | None  # the feed's own title, plain text
    link: str | None  # the site's link, absolute
    format: str  # "rss2" (also RSS 0.91/0.92) | "rss1" | "rss090" | "atom" (also 0.3) | "jsonfeed"
    items: tuple[RawItem, ...]
    warnings: tuple[str, ...] = ()  # what was kept despite a fault: bytes replaced, items cut, read leniently
    # Item elements not parsed because their raw digest is known (`known`): already stored, unchanged. Their
    # post keys, distinct, in feed order; `skipped` counts the elements (a repeated one counts each time).
    skipped_keys: tuple[str, ...] = ()
    skipped: int = 0


def parse_feed(
    body: bytes, *, url: str, content_type: str | None = None, known: Mapping[bytes, str] | None = None
) -> ParsedFeed:
    """Read a feed document. Raises ParseError with a one-line reason when nothing can be read.

    `known`: raw digest -> post key of the source's stored posts. With it (even empty) every RSS/Atom item
    carries its `raw_digest`, and items whose digest is known are skipped (counted in `skipped`)."""
    body = gunzip_if_gzip(body)
    if not body.strip():
        raise ParseError("empty document")
    if _is_json(body, content_type):
        return _parse_json_feed(body, url=url, content_type=content_type)
    root, notes = _parse_xml(body, content_type)
    try:
        feed = _read_tree(root, url, known)
        if feed.skipped and _collides(feed, known or {}):
            feed = _read_tree(root, url, {})  # as if nothing were known: see _collides
    except ValueError as exc:  # lxml refusing text it kept in recover mode; items are guarded one by one
        raise ParseError(f"unreadable XML content: {exc}") from exc
    if notes.too_deep and not feed.items:
        raise ParseError(
            f"the feed nests elements more than {MAX_DEPTH} levels deep ({notes.too_deep}); no item could be read"
        )
    return replace(feed, warnings=(*notes.lines, *feed.warnings))


# ---------------------------------------------------------------- XML: bytes -> tree

_XML_DECL = re.compile(rb"^\s*(?:<!--.{0,2000}?-->\s*){0,20}<\?xml(?![\w.-]).{0,500}?\?>", re.DOTALL)
_HTML_START = re.compile(
    rb"^\s*(?:<!--.{0,2000}?-->\s*){0,20}<(?:!doctype\s+html|html[\s>])", re.IGNORECASE | re.DOTALL
)
_ELEMENT_START = re.compile(rb"<[A-Za-z_]")
_COMMENT = re.compile(rb"<!--.*?(?:-->|$)", re.DOTALL)
# "&" that starts no entity or character reference; and named references (HTML's are common in feeds)
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # never allowed in XML 1.0
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")
_BARE_AMP = re.compile(rb"&(?!#\d+;|#[xX][0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]*;)")
_NAMED_REF = re.compile(rb"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})
_UNQUOTED_TAG = re.compile(rb"<[A-Za-z_][^<>]*?\s[\w:.-]+\s*=\s*[^\s\"'<>=]")
_START_TAG = re.compile(rb"<[A-Za-z_][^<>]*>")
_ATTR = re.compile(rb"(\s[\w:.-]+\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s\"'<>=]+)")
_TRUNCATED_TAIL = re.compile(rb"<[^>]*\Z")  # a document cut inside a tag, comment or CDATA opener
_ENTITY_DECL = re.compile(rb"<!ENTITY\s", re.IGNORECASE)
_DTD_HEAD = 1 << 20  # a DOCTYPE with entity declarations comes before the root element, near the start
_EXCESSIVE_DEPTH = "Excessive depth"  # libxml2's message once a document passes its depth limit
MAX_DEPTH = 256  # libxml2's own limit on element depth (huge_tree off)


def _parser(*, recover: bool) -> etree.XMLParser:
    return etree.XMLParser(
        encoding="utf-8",
        recover=recover,
        resolve_entities=False,  # entities stay unexpanded references: no billion laughs, no XXE
        load_dtd=False,
        no_network=True,
        huge_tree=False,  # keep libxml2's limits on depth and text node size
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
        strip_cdata=True,
    )


@dataclass
class _Notes:
    """What reading the XML had to put up with, for the feed's warnings."""

    lines: list[str]
    too_deep: str | None = None  # where the document passed libxml2's depth limit (MAX_DEPTH), if it did


def _parse_xml(body: bytes, content_type: str | None) -> tuple[Any, _Notes]:
    data, decode_warning = _to_utf8(body, content_type)
    notes = _Notes([decode_warning] if decode_warning else [])
    if _HTML_START.match(data):
        raise ParseError("not a feed: HTML page")
    if not _ELEMENT_START.search(data):
        if not _COMMENT.sub(b"", data).strip():
            raise ParseError("empty document")
        raise ParseError("not a feed: neither XML nor JSON")
    if _ENTITY_DECL.search(data, 0, _DTD_HEAD):
        notes.lines.append(
            "the feed declares its own XML entities (<!ENTITY ...>): they are left unexpanded, a defence "
            "against entity bombs, so text made of them is missing"
        )
    try:
        return etree.fromstring(data, _parser(recover=False)), notes
    except etree.XMLSyntaxError as exc:
        first_error = exc
    errors = [first_error]
    repaired = _repair(data)
    if repaired != data:
        try:
            return etree.fromstring(repaired, _parser(recover=False)), notes
        except etree.XMLSyntaxError as exc:
            errors.append(exc)
    try:
        root = etree.fromstring(repaired, _parser(recover=True))
    except etree.XMLSyntaxError:
        root = None
    if root is None:
        raise ParseError(_xml_error(first_error))
    deep = next((e for e in errors if _EXCESSIVE_DEPTH in str(e.msg or e)), None)
    if deep is not None:
        notes.too_deep = f"from line {deep.lineno}" if deep.lineno else "somewhere"
        notes.lines.append(
            f"the feed nests elements more than {MAX_DEPTH} levels deep ({notes.too_deep}); what lies deeper "
            "was not read"
        )
    else:
        notes.lines.append(
            f"the feed is not well-formed ({_xml_error(first_error)}); it was read leniently: items may be "
            "missing or incomplete"
        )
    return root, notes


def _to_utf8(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """The body as UTF-8 bytes with no BOM and no XML declaration (the charset is decided here), and the
    decoder's warning when bytes had to be replaced."""
    warning = None
    if b"\x00" not in body[:4] and (body.isascii() or _valid_utf8(body)):
        data = body  # the common case: nothing to convert
    else:
        decoded = decode(body, content_type)
        data = decoded.text.lstrip("\ufeff").encode("utf-8")
        warning = decoded.warning
    data = _XML_DECL.sub(b"", data, count=1)
    return data.lstrip(), warning


def _valid_utf8(body: bytes) -> bool:
    """UTF-8 without a BOM; a UTF-16 or UTF-32 document with its BOM never decodes as UTF-8."""
    if body.startswith(b"\xef\xbb\xbf"):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _repair(data: bytes) -> bytes:
    """Fix what commonly breaks real feeds: bare "&", HTML named entities, unquoted attribute values,
    a document cut off inside its last tag."""
    data = _CONTROL.sub(b"", data)
    data = _CHAR_REF.sub(_valid_char_ref, data)
    data = _BARE_AMP.sub(b"&amp;", data)
    data = _NAMED_REF.sub(_named_ref, data)
    if _UNQUOTED_TAG.search(data):
        data = _START_TAG.sub(_quote_attributes, data)
    return _TRUNCATED_TAIL.sub(b"", data)


def _valid_char_ref(match: re.Match[bytes]) -> bytes:
    hexa, decimal = match.group(1), match.group(2)
    try:
        code = int(hexa, 16) if hexa else int(decimal)
    except ValueError:
        return b"&#xFFFD;"
    allowed = code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
    return match.group(0) if allowed or 0x10000 <= code <= 0x10FFFF else b"&#xFFFD;"


def _quote_attributes(match: re.Match[bytes]) -> bytes:
    tag = match.group(0)
    if b"=" not in tag:
        return tag
    return _ATTR.sub(_quoted, tag)


def _quoted(match: re.Match[bytes]) -> bytes:
    value = match.group(2)
    if value[:1] in (b'"', b"'"):
        return match.group(0)
    return match.group(1) + b'"' + value + b'"'


def _named_ref(match: re.Match[bytes]) -> bytes:
    name = match.group(1)
    if name in _XML_ENTITIES:
        return match.group(0)
    char = html.entities.html5.get(name.decode("ascii") + ";")
    if char is None:
        return b"&amp;" + name + b";"  # keep an unknown entity as the text it was
    return "".join(f"&#{ord(c)};" for c in char).encode("ascii")


def _xml_error(exc: etree.XMLSyntaxError) -> str:
    message = " ".join(str(exc.msg or exc).split())
    return f"XML error at line {exc.lineno}: {message}" if exc.lineno else f"XML error: {message}"


# ---------------------------------------------------------------- XML: tree -> feed


@lru_cache(maxsize=512)
def _split(tag: str) -> tuple[str, str]:
    """(namespace, lower-case local name); "rss:item" with an undeclared prefix (recover mode) is "item"."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local.lower()
    return "", tag.rpartition(":")[2].lower()


def _children(parent: Any) -> Iterator[tuple[str, str, Any]]:
    for child in parent:
        tag = child.tag
        if isinstance(tag, str):  # skip entity references and other non-elements
            ns, local = _split(tag)
            yield ns, local, child


def _read_tree(root: Any, url: str, known: Mapping[bytes, str] | None = None) -> ParsedFeed:
    if not isinstance(root.tag, str):
        raise ParseError("not a feed: no root element")
    ns, local = _split(root.tag)
    lowered = local.lower()
    if lowered == "html":
        raise ParseError("not a feed: HTML page")
    if lowered == "rss":
        return _read_rss(root, url, "rss2", known)
    if lowered == "rdf":
        return _read_rss(root, url, "rss090" if ns == RSS090_NS else "rss1", known)
    if lowered == "feed":
        return _read_atom(root, url, known)
    raise ParseError(f"not a feed: root element <{local}>")


def _collides(feed: ParsedFeed, known: Mapping[bytes, str]) -> bool:
    """Whether a parsed item shares its post key with a skipped one. Then which copy is "the" post depends on
    their order in the feed (the poll keeps the first), so the skip could differ from a full parse: there is
    none, the caller parses everything. Rare: a feed listing one id twice with different content."""
    skipped = set(feed.skipped_keys)
    return any(post_key(item.guid, item.url, item.title, item.text) in skipped for item in feed.items)


class _Digester:
    """Raw digests of one feed's item elements: blake2b over the item's own bytes (its namespace declarations
    included), keyed by a digest of PARSER_VERSION and the inherited values (the fetch URL, the feed's link,
    the core namespaces, the feed author for Atom, whether xml:base is used, and the base in scope at the item)."""

    def __init__(self, fmt: str, ctx: _Context, feed_author: str | None = None) -> None:
        head = hashlib.blake2b(digest_size=32)
        for value in (PARSER_VERSION, fmt.encode(), ctx.url.encode(), ctx.site.encode(),
                      "\x1f".join(sorted(ctx.core_nss)).encode(), (feed_author or "\x00").encode(),
                      b"b" if ctx.has_xml_base else b"-"):  # fmt: skip
            head.update(len(value).to_bytes(4, "big"))
            head.update(value)
        self.key = head.digest()
        self.varies = ctx.has_xml_base  # the key differs from item to item (key_at)
        self._url = ctx.url

    def key_at(self, el: Any) -> bytes:
        """The key for `el` when xml:base is used: the feed's, with the base in scope at the item."""
        return hashlib.blake2b(self.key + (_xml_base(el, self._url) or "").encode(), digest_size=32).digest()


def _read_items(
    elements: Iterable[Any],
    read: Callable[[Any, bytes | None], RawItem | None],
    digester: _Digester | None,
    known: Mapping[bytes, str],
) -> tuple[tuple[RawItem, ...], tuple[str, ...], int]:
    """The items read from `elements`, with their raw digests when there is a digester; the keys (distinct)
    and the number of the elements skipped because their digest is known."""
    if digester is None:
        return tuple(item for el in elements if (item := _guarded(read, el, None)) is not None), (), 0
    items: list[RawItem] = []
    skipped_keys: dict[str, None] = {}
    skipped = 0
    # the digest, with locals: it runs for every item of every poll
    tostring, blake2b, feed_key, key_at = etree.tostring, hashlib.blake2b, digester.key, digester.key_at
    varies = digester.varies
    for el in elements:
        try:
            raw = tostring(el, encoding="utf-8", with_tail=False)
        except ValueError:  # lxml cannot serialise it: simply parsed
            digest = None
        else:
            digest = blake2b(raw, digest_size=16, key=key_at(el) if varies else feed_key).digest()
            if known and (key := known.get(digest)) is not None:
                skipped_keys[key] = None
                skipped += 1
                continue
        try:
            item = read(el, digest)
        except ValueError:  # as _guarded: an item whose text lxml cannot hand over is skipped alone
            continue
        if item is not None:
            items.append(item)
    return tuple(items), tuple(skipped_keys), skipped


@dataclass
class _Context:
    """What resolving one feed's links needs."""

    url: str  # where the document was fetched from
    site: str  # the feed's own link when absolute, else `url`: the base for relative item links
    core_nss: frozenset[str]  # namespaces whose elements are core RSS fields
    has_xml_base: bool


def _context(root: Any, url: str, site: str | None) -> _Context:
    has_base = bool(root.xpath("boolean(//@xml:base)"))
    core = frozenset({"", RSS1_NS, RSS090_NS, root.nsmap.get(None) or ""}) - _FOREIGN_NSS | {""}
    return _Context(url=url, site=site or url, core_nss=core, has_xml_base=has_base)


def _base(el: Any, ctx: _Context) -> str:
    """The base URL for links inside `el`: its xml:base chain, else the feed's link, else the fetch URL."""
    base = _xml_base(el, ctx.url) if ctx.has_xml_base else None
    return base or ctx.site


def _xml_base(el: Any, url: str) -> str | None:
    """The xml:base in scope at `el` (resolved against the fetch URL), or None when there is none."""
    bases: list[str] = []
    node = el
    while node is not None:
        value = node.get(XML_BASE) if isinstance(node.tag, str) else None
        if value is not None:
            bases.append(value.strip())
        node = node.getparent()
    if not bases:
        return None
    base = url
    for value in reversed(bases):
        base = urljoin(base, value)
    return base


def _text(el: Any) -> str:
    """The element's content as a string: its text, or its markup when it holds child elements."""
    if len(el) == 0:
        return el.text or ""
    parts = [html.escape(el.text or "", quote=False)]
    for child in el:
        if isinstance(child.tag, str):
            parts.append(etree.tostring(child, encoding="unicode", with_tail=True))
        else:  # an unexpanded entity reference (never expanded, see the module docstring): drop it
            parts.append(html.escape(child.tail or "", quote=False))
    return "".join(parts)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ---- RSS


def _read_rss(root: Any, url: str, fmt: str, known: Mapping[bytes, str] | None = None) -> ParsedFeed:
    channel = next((el for _ns, local, el in _children(root) if local == "channel"), None)
    title = link = None
    ctx = _context(root, url, None)
    if channel is not None:
        for ns, local, el in _children(channel):
            if ns not in ctx.core_nss:
                continue
            if local == "title" and title is None:
                title = _one_line(html_to_text(_text(el))) or None
            elif local == "link" and link is None and (el.text or "").strip():
                link = absolute_url(el.text, _base(el, ctx))
    ctx.site = link or url
    elements, cut = _capped(_rss_item_elements(root, channel))
    digester = _Digester(fmt, ctx) if known is not None else None
    parsed, keys, skipped = _read_items(elements, lambda el, digest: _rss_item(el, ctx, digest), digester, known or {})
    return ParsedFeed(
        title=title, link=link, format=fmt, items=parsed, warnings=cut, skipped_keys=keys, skipped=skipped
    )


def _capped(elements: Iterable[T]) -> tuple[list[T], tuple[str, ...]]:
    """The first MAX_ITEMS elements, and a warning when there were more (counted, not read)."""
    rest = iter(elements)
    kept = list(islice(rest, MAX_ITEMS))
    more = sum(1 for _ in rest)
    if not more:
        return kept, ()
    return kept, (
        f"the feed holds {MAX_ITEMS + more:,} items: only the first {MAX_ITEMS:,} were read (the cap per feed)",
    )


def _guarded(read: Callable[..., RawItem | None], el: Any, *args: Any) -> RawItem | None:
    """One item whose text lxml cannot hand over (broken bytes kept by recover mode) is skipped alone."""
    try:
        return read(el, *args)
    except ValueError:
        return None


def _rss_item_elements(root: Any, channel: Any) -> Iterator[Any]:
    """Items that are children of the channel or of the root; nested items are not items."""
    for parent in (channel, root):
        if parent is None:
            continue
        for _ns, local, el in _children(parent):
            if local == "item":
                yield el


@dataclass
class _Fields:
    """Raw values collected from one item's child elements, first occurrence wins."""

    title: str | None = None
    link: str | None = None
    guid: str | None = None
    guid_is_link: bool = True
    author: str | None = None
    dates: dict[str, str] | None = None
    texts: list[str] | None = None  # candidates for the body: the longest wins
    fallback_text: str | None = None  # media:description: used only when there is no other text
    atom_link: str | None = None

    def date(self, key: str, value: str | None) -> None:
        if value and value.strip():
            if self.dates is None:
                self.dates = {}
            self.dates.setdefault(key, value)

    def text(self, value: str) -> None:
        if value.strip():
            if self.texts is None:
                self.texts = []
            self.texts.append(value)


_RSS_DATE_ORDER = ("pubdate", "dc", "published", "updated")


def _rss_item(item: Any, ctx: _Context, digest: bytes | None = None) -> RawItem | None:
    fields = _Fields()
    for ns, local, el in _children(item):
        if ns in ctx.core_nss:
            _rss_core_field(fields, local, el)
        elif ns in (DC_NS, DCTERMS_NS):
            _dc_field(fields, local, el)
        elif ns == CONTENT_NS and local == "encoded":
            fields.text(_text(el))
        elif ns == ATOM_NS:
            _atom_in_rss_field(fields, local, el)
        elif (ns == YANDEX_NS and local == "full-text") or (ns == TURBO_NS and local == "content"):
            fields.text(_text(el))
        elif ns in MEDIA_NSS:
            _media_field(fields, local, el)
    base = _base(item, ctx)
    link = absolute_url(fields.link, base) or absolute_url(fields.atom_link, base)
    if link is None and fields.guid and fields.guid_is_link:
        link = absolute_url(fields.guid, base) if fields.guid.startswith(("http://", "https://")) else None
    dates = fields.dates or {}
    published = _first_date(dates.get(key) for key in _RSS_DATE_ORDER)
    return _make_item(fields, link, published, digest)


def _rss_core_field(fields: _Fields, local: str, el: Any) -> None:
    if local == "title":
        if fields.title is None:
            fields.title = _text(el)
    elif local == "link":
        if fields.link is None and (el.text or "").strip():
            fields.link = el.text
        elif fields.link is None and el.get("href"):  # <link href="..."/> written Atom-style
            fields.link = el.get("href")
    elif local == "description":
        fields.text(_text(el))
    elif local == "guid":
        if fields.guid is None and (el.text or "").strip():
            fields.guid = el.text.strip()
            fields.guid_is_link = (el.get("isPermaLink") or "true").strip().lower() != "false"
    elif local == "pubdate":
        fields.date("pubdate", el.text)
    elif local == "author" and fields.author is None:
        fields.author = _rss_author(el.text or "")


def _dc_field(fields: _Fields, local: str, el: Any) -> None:
    if local in ("creator", "contributor"):
        if fields.author is None and (el.text or "").strip():
            fields.author = _one_line(el.text)
    elif local in ("date", "issued", "created", "modified"):
        fields.date("dc", el.text)
    elif local == "title":
        if fields.title is None:
            fields.title = _text(el)
    elif local == "description":
        fields.text(_text(el))


def _atom_in_rss_field(fields: _Fields, local: str, el: Any) -> None:
    if local == "link" and fields.atom_link is None and el.get("rel", "alternate") == "alternate":
        fields.atom_link = el.get("href")
    elif local in ("published", "updated"):
        fields.date(local, el.text)
    elif local == "author" and fields.author is None:
        fields.author = _atom_person(el)
    elif local in ("summary", "content"):
        fields.text(_text(el))


def _media_field(fields: _Fields, local: str, el: Any) -> None:
    if local == "description" and fields.fallback_text is None:
        fields.fallback_text = _text(el)
    elif local == "group":
        for _ns, sub_local, sub in _children(el):
            if sub_local == "description" and fields.fallback_text is None:
                fields.fallback_text = _text(sub)


def _rss_author(value: str) -> str | None:
    """RSS <author> is "email (Name)"; keep the name when there is one."""
    value = _one_line(value)
    match = re.fullmatch(r"\S+@\S+\s*\((.+)\)", value)
    return (match.group(1).strip() if match else value) or None


def _first_date(values: Iterable[str | None]) -> datetime | None:
    for value in values:
        if value:
            parsed = parse_date(value)
            if parsed is not None:
                return parsed
    return None


def _make_item(
    fields: _Fields, link: str | None, published: datetime | None, digest: bytes | None = None
) -> RawItem | None:
    title = _one_line(html_to_text(fields.title)) if fields.title else ""
    raw_text = max(fields.texts, key=len) if fields.texts else (fields.fallback_text or "")
    text = html_to_text(raw_text) if raw_text else ""
    if not (title or text or link):
        return None
    return RawItem(
        guid=fields.guid or None,
        url=link,
        title=title,
        text=text,
        author=fields.author or None,
        published=published,
        raw_digest=digest,
    )


# ---- Atom


_ATOM_NSS = frozenset({ATOM_NS, ATOM03_NS, ""})


PLACEHOLDER_FEED_AUTHOR = "RSS-Bridge"


def _read_atom(root: Any, url: str, known: Mapping[bytes, str] | None = None) -> ParsedFeed:
    title = None
    link_el = None
    feed_author = None
    for ns, local, el in _children(root):
        if ns not in _ATOM_NSS:
            continue
        if local == "title" and title is None:
            title = _one_line(_atom_text(el)) or None
        elif local == "link" and _is_alternate(el) and link_el is None:
            link_el = el
        elif local == "author" and feed_author is None:
            feed_author = _atom_person(el)
    if feed_author == PLACEHOLDER_FEED_AUTHOR:  # RSS-Bridge names itself as every feed's author: no one wrote it
        feed_author = None
    has_base = bool(root.xpath("boolean(//@xml:base)"))
    ctx = _Context(url=url, site=url, core_nss=_ATOM_NSS, has_xml_base=has_base)
    link = absolute_url(link_el.get("href"), _base(link_el, ctx)) if link_el is not None else None
    ctx.site = link or url
    entries, cut = _capped(el for ns, local, el in _children(root) if local == "entry" and ns in _ATOM_NSS)
    digester = _Digester("atom", ctx, feed_author) if known is not None else None
    parsed, keys, skipped = _read_items(
        entries, lambda el, digest: _atom_entry(el, ctx, feed_author, digest), digester, known or {}
    )
    return ParsedFeed(
        title=title, link=link, format="atom", items=parsed, warnings=cut, skipped_keys=keys, skipped=skipped
    )


def _is_alternate(el: Any) -> bool:
    return el.get("rel", "alternate").strip() == "alternate" and bool(el.get("href"))


def _atom_entry(entry: Any, ctx: _Context, feed_author: str | None, digest: bytes | None = None) -> RawItem | None:
    fields = _Fields()
    link_el = None
    html_texts: list[str] = []
    for ns, local, el in _children(entry):
        if ns in MEDIA_NSS:
            _media_field(fields, local, el)
            continue
        if ns == DC_NS:
            _dc_field(fields, local, el)
            continue
        if ns not in _ATOM_NSS:
            continue
        if local == "id" and fields.guid is None and (el.text or "").strip():
            fields.guid = el.text.strip()
        elif local == "title" and fields.title is None:
            fields.title = html.escape(_atom_text(el), quote=False)
        elif local == "link" and _is_alternate(el) and (link_el is None or _prefer_link(el, link_el)):
            link_el = el
        elif local in ("content", "summary"):
            html_texts.append(_atom_html(el))
        elif local in ("published", "updated", "issued", "modified", "created"):
            fields.date(local, el.text)
        elif local == "author" and fields.author is None:
            fields.author = _atom_person(el)
    link = absolute_url(link_el.get("href"), _base(link_el, ctx)) if link_el is not None else None
    dates = fields.dates or {}
    published = _first_date(dates.get(key) for key in ("published", "issued", "created", "updated", "modified"))
    if fields.author is None:
        fields.author = feed_author
    fields.texts = [t for t in html_texts if t.strip()] or fields.texts
    return _make_item(fields, link, published, digest)


def _prefer_link(new: Any, old: Any) -> bool:
    """Among alternate links, an HTML one beats one of another type."""
    return "html" in (new.get("type") or "text/html") and "html" not in (old.get("type") or "text/html")


def _atom_type(el: Any) -> str:
    kind = (el.get("type") or "text").strip().lower()
    if el.get("mode") == "escaped":  # Atom 0.3
        return "html"
    return kind


def _atom_text(el: Any) -> str:
    """An Atom text construct (title) as plain text."""
    kind = _atom_type(el)
    if kind in ("html", "text/html", "xhtml", "application/xhtml+xml"):
        return html_to_text(_text(el))
    return tidy_text(el.text or "")


def _atom_html(el: Any) -> str:
    """An Atom content/summary as HTML, ready for html_to_text (plain text is escaped)."""
    kind = _atom_type(el)
    if el.get("src") or el.get("mode") == "base64":
        return ""
    if kind in ("html", "text/html", "xhtml", "application/xhtml+xml") or len(el):
        return _text(el)
    return html.escape(el.text or "", quote=False).replace("\n", "<br>")


def _atom_person(el: Any) -> str | None:
    for _ns, local, sub in _children(el):
        if local == "name" and (sub.text or "").strip():
            return _one_line(sub.text)
    for _ns, local, sub in _children(el):
        if local == "email" and (sub.text or "").strip():
            return _one_line(sub.text)
    return _one_line(el.text or "") or None


# ---------------------------------------------------------------- JSON Feed


def _is_json(body: bytes, content_type: str | None) -> bool:
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return True
    return bool(content_type and "json" in content_type.lower() and head.startswith((b"{", b"[")))


def _parse_json_feed(body: bytes, *, url: str, content_type: str | None) -> ParsedFeed:
    decoded = decode(body, content_type)
    text = decoded.text.lstrip("\ufeff")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"JSON error: {_one_line(str(exc))[:200]}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ParseError("not a feed: JSON without an 'items' list")
    title = _str(doc.get("title"))
    link = absolute_url(_str(doc.get("home_page_url")), url)
    site = link or url
    feed_author = _json_author(doc)
    entries, cut = _capped(doc["items"])
    items = tuple(
        item
        for entry in entries
        if isinstance(entry, dict) and (item := _json_item(entry, site, feed_author)) is not None
    )
    warnings = (*([decoded.warning] if decoded.warning else []), *cut)
    return ParsedFeed(
        title=_one_line(title) if title else None, link=link, format="jsonfeed", items=items, warnings=warnings
    )


def _json_item(entry: dict[str, Any], site: str, feed_author: str | None) -> RawItem | None:
    fields = _Fields()
    raw_id = entry.get("id")
    fields.guid = str(raw_id).strip() if isinstance(raw_id, str | int) and str(raw_id).strip() else None
    fields.title = html.escape(_str(entry.get("title")) or "", quote=False)
    for key, escape in (("content_html", False), ("content_text", True), ("summary", True)):
        value = _str(entry.get(key))
        if value:
            fields.text(html.escape(value, quote=False).replace("\n", "<br>") if escape else value)
    fields.author = _json_author(entry) or feed_author
    link = absolute_url(_str(entry.get("url")), site) or absolute_url(_str(entry.get("external_url")), site)
    published = _first_date((_str(entry.get("date_published")), _str(entry.get("date_modified"))))
    return _make_item(fields, link, published)


def _json_author(obj: dict[str, Any]) -> str | None:
    authors = obj.get("authors")
    candidates = authors if isinstance(authors, list) else []
    candidates = [*candidates, obj.get("author")]
    for author in candidates:
        if isinstance(author, dict):
            name = _str(author.get("name"))
            if name:
                return _one_line(name)
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
