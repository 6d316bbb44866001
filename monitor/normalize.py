"""RawItem -> Post: canonical URLs, clean text, the post key and the content hash.

Pure: does no I/O; takes data and `now`, returns data.

Decisions (see DESIGN.md "Posts and deduplication"):

* Canonical URL: http(s) only; scheme and host lower-case; default port, fragment, user info and
  tracking parameters (`TRACKING_PARAMS`, plus every ``utm_*``) removed; the remaining query pairs
  sorted; percent-encoding normalised (escapes of unreserved characters decoded, other escapes in
  upper-case hex, every other character outside RFC 3986's allowed set encoded as UTF-8); dot
  segments removed; an empty path becomes ``/``; one trailing dot of the host removed.
  Internationalised hosts are stored as **punycode** (``xn--...``), the form WHATWG URL serialisers
  and HTTP clients use, so a canonical URL is plain ASCII and both spellings of a host meet. The
  stdlib ``idna`` codec (IDNA 2003) does the conversion; it maps ``ß`` to ``ss`` where browsers keep
  it, which does not matter for Cyrillic or Kazakh domains.
* Post key: the item's GUID when it has one, else its canonical URL, else ``hash:`` + content hash.
  A GUID is opaque (RSS), so it is used as given (only trimmed, whitespace runs collapsed, control
  characters dropped), except that a GUID that is itself an absolute http(s) URL is canonicalised like
  a URL *but keeps its fragment*: feeds that put per-poll ``utm_*``
  parameters in permalink GUIDs then keep one key, while comment feeds whose GUIDs differ only by
  ``#comment-N`` keep one key per comment. Keys longer than `MAX_KEY_CHARS` are replaced by
  ``key-hash:`` + a digest of them, so a hostile feed cannot bloat the UNIQUE index.
* Times: `published_at` is the item's time, or `first_seen_at` when it has none or when it is later
  than `first_seen_at` (a time in the future). No clock-skew allowance is needed: a publisher whose
  clock runs a few minutes fast is clamped to the poll time, which is almost the same instant.
* Text: `clean_text` (NFC, no control characters, single spaces, at most one blank line between
  paragraphs). Titles and authors are single lines. Texts are cut at `MAX_TEXT_CHARS`, titles at
  `MAX_TITLE_CHARS`, authors at `MAX_AUTHOR_CHARS`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from urllib.parse import quote, urljoin, urlsplit

from monitor.worktypes import Post, RawItem

MAX_TEXT_CHARS = 100_000  # a hostile page cannot bloat the store beyond this per post
MAX_TITLE_CHARS = 1_000
MAX_AUTHOR_CHARS = 200
MAX_KEY_CHARS = 2_048  # longer GUIDs or URLs become "key-hash:<digest>" keys

# Query parameters that only track the click, never select content (case-insensitive), plus every
# name starting with "utm_". Kept to well-known click and campaign ids: a generic name such as
# "ref", "from" or "source" may select content on some site, so it stays.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        "fbclid",  # Facebook
        "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "_ga", "_gl",  # Google Ads / Analytics
        "yclid", "ysclid", "_openstat", "openstat",  # Yandex
        "msclkid",  # Microsoft Ads
        "mc_cid", "mc_eid",  # Mailchimp
        "igshid", "igsh",  # Instagram
        "ref_src", "ref_url", "twclid",  # Twitter / X
        "ttclid",  # TikTok
        "li_fat_id",  # LinkedIn
        "mkt_tok",  # Marketo
        "_hsenc", "_hsmi", "hsctatracking",  # HubSpot
        "oly_anon_id", "oly_enc_id",  # Omeda
        "vero_id", "vero_conv",  # Vero
        "rb_clickid", "s_cid", "wickedid", "__twitter_impression", "at_medium", "at_campaign",
    }
)  # fmt: skip
_TRACKING_PREFIX = "utm_"
_DEFAULT_PORTS = {"http": 80, "https": 443}

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SAFE_PATH = "/:@!$&'()*+,;="  # besides the unreserved characters, which quote() never encodes
_SAFE_QUERY_NAME = ":@!$'()*+,;/?"  # '&' and '=' separate pairs, so inside a name they stay encoded
_SAFE_QUERY_VALUE = _SAFE_QUERY_NAME + "="
_SAFE_FRAGMENT = _SAFE_PATH + "?"
_ESCAPE_SPLIT = re.compile(r"(%[0-9A-Fa-f]{2})")
_URL_DROP = re.compile(r"[\t\n\r]")  # WHATWG: tabs and newlines inside a URL are ignored
_URL_STRIP = "".join(map(chr, range(0x21))) + "\u00a0\ufeff"  # C0 controls, space, NBSP, BOM
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_HOST_IPV6 = re.compile(r"[0-9a-f:.]+")
# A URL that is its own canonical form but for an empty path and the order and tracking pairs of its query:
# lower-case http(s), a host name, no port, user info or fragment, a path and query of unreserved characters only
# (no escapes to normalise; dot segments are ruled out by the caller's "/." test). Anything else takes the full route.
_PLAIN_URL = re.compile(r"(https?://[a-z0-9_-]+(?:\.[a-z0-9_-]+)*)(/[A-Za-z0-9._~/-]*)?(?:\?([A-Za-z0-9._~=&-]*))?")


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical form of an http(s) URL (see the module docstring), or None when it has none.

    A relative `url` is resolved against `base` first. Idempotent.
    """
    return _canonical(url, base, keep_fragment=False)


def _canonical(url: str | None, base: str | None, *, keep_fragment: bool) -> str | None:
    if url is None:
        return None
    if base is None and (plain := _PLAIN_URL.fullmatch(url)) and "/." not in url:
        origin, path, query = plain.groups()  # the common case, without urlsplit
        query = query and _canonical_query(query, escaped=False)
        return f"{origin}{path or '/'}?{query}" if query else f"{origin}{path or '/'}"
    return _canonical_cached(url, base, keep_fragment)


@functools.lru_cache(maxsize=4096)  # the same URL comes back with every poll of a feed
def _canonical_cached(url: str, base: str | None, keep_fragment: bool) -> str | None:
    url = _URL_DROP.sub("", url).strip(_URL_STRIP)
    if not url or _SURROGATE.search(url) or (base is not None and _SURROGATE.search(base)):
        return None
    try:
        if base:
            url = urljoin(_URL_DROP.sub("", base).strip(), url)
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return None
    host = _canonical_host(parts.hostname)
    if host is None:
        return None
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_pct(parts.path, _SAFE_PATH)) or "/"
    query = _canonical_query(parts.query)
    out = f"{scheme}://{netloc}{path}"
    if query:
        out += "?" + query
    if keep_fragment and parts.fragment:
        out += "#" + _pct(parts.fragment, _SAFE_FRAGMENT)
    return out


def _canonical_host(host: str | None) -> str | None:
    """Lower-case ASCII host (punycode for IDNs), IPv6 in brackets; None when it is not a host."""
    if not host:
        return None
    if ":" in host:  # urlsplit only lets ':' through inside brackets: an IPv6 literal
        return f"[{host}]" if _HOST_IPV6.fullmatch(host) else None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    return host if _HOST_NAME.fullmatch(host) else None


def _pct(s: str, safe: str) -> str:
    """Normalise percent-encoding: decode unreserved escapes, upper-case the rest, encode the unsafe."""
    out: list[str] = []
    for i, part in enumerate(_ESCAPE_SPLIT.split(s)):
        if i % 2:  # an escape
            ch = chr(int(part[1:], 16))
            out.append(ch if ch in _UNRESERVED else part.upper())
        elif part:  # literal text; a '%' that starts no escape is encoded as %25
            out.append(quote(part, safe=safe))
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 for an absolute path: '.' and '..' segments resolved."""
    segments = path.split("/")[1:]
    if not any(seg in {".", ".."} for seg in segments):
        return path
    out: list[str] = []
    for seg in segments:
        if seg == "..":
            if out:
                out.pop()
        elif seg != ".":
            out.append(seg)
    if segments[-1] in {".", ".."}:
        out.append("")  # "/a/b/.." names the directory "/a/"
    return "/" + "/".join(out)


def _canonical_query(query: str, *, escaped: bool = True) -> str:
    """Pairs with normalised escapes, tracking parameters removed, sorted. `escaped=False`: the query holds
    unreserved characters, "=" and "&" only, so there is no escape to normalise."""
    pairs: list[tuple[str, str, str]] = []
    for pair in query.split("&"):
        if not pair:
            continue
        name, sep, value = pair.partition("=")
        if escaped:
            name, value = _pct(name, _SAFE_QUERY_NAME), value and _pct(value, _SAFE_QUERY_VALUE)
        lowered = name.lower()
        if lowered in TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIX):
            continue
        pairs.append((name, value, sep))
    pairs.sort()
    return "&".join(name + sep + value for name, value, sep in pairs)


# --- text -----------------------------------------------------------------------------------------


# Line breaks: CRLF, CR, NEL, line and paragraph separators. Dropped: C0 and C1 controls; soft hyphen,
# zero-width space, word joiner and BOM (invisible, and they split words for search); non-characters
# U+FFFE/U+FFFF and lone surrogates (UTF-8 cannot store them). Joiners U+200C/U+200D stay: scripts need
# them. Spaces: tab, VT, FF and every Unicode space separator. After these, the only whitespace left
# is " " and "\n".
_NEWLINES = re.compile("[\r\x85\u2028\u2029]")
_DROP = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\xad\u200b\u2060\ufeff\ufffe\uffff\ud800-\udfff]")
_SPACES = re.compile("[\t\x0b\x0c\xa0\u1680\u2000-\u200a\u202f\u205f\u3000]")


def clean_text(s: str) -> str:
    """NFC text without control characters: single spaces, lines stripped, at most one blank line
    between paragraphs (a run of blank lines becomes one), no leading or trailing whitespace."""
    if not s.replace("\n", "").isprintable():  # cheap test: controls, separators, odd spaces, Cf
        s = _SPACES.sub(" ", _DROP.sub("", _NEWLINES.sub("\n", s.replace("\r\n", "\n"))))
    if not unicodedata.is_normalized("NFC", s):
        s = unicodedata.normalize("NFC", s)
    if "\n" not in s:
        return " ".join(s.split())  # only " " is left as whitespace: split() collapses and strips runs
    lines: list[str] = []
    for raw in s.split("\n"):
        line = " ".join(raw.split())
        if line or (lines and lines[-1]):  # no blank line first, none after another
            lines.append(line)
    return "\n".join(lines).rstrip("\n")


def _one_line(s: str, cap: int = MAX_TEXT_CHARS) -> str:
    return _single_spaced(clean_text(s))[:cap].rstrip()


def _single_spaced(cleaned: str) -> str:
    return " ".join(cleaned.split())  # in cleaned text the only whitespace is " " and "\n"


def _title(s: str) -> str:
    return _one_line(s, MAX_TITLE_CHARS)


def _body(s: str) -> str:
    return clean_text(s)[:MAX_TEXT_CHARS].rstrip()


def content_hash(title: str, text: str) -> str:
    """Hex blake2b-128 of the title and text as `normalize` stores them, every whitespace run as one space.

    Case and punctuation count (an edit that changes them is an edit); whitespace and line breaks do not.
    Equal to ``normalize(item, ...).content_hash`` for the item's raw title and text.
    """
    return _content_hash(_title(title), _body(text))


def _content_hash(title: str, text: str) -> str:
    """`content_hash` of a title and text that are already cleaned (by `_title` and `_body`)."""
    data = _single_spaced(title) + "\x1f" + _single_spaced(text)  # no \x1f is left in clean text
    return hashlib.blake2b(data.encode("utf-8"), digest_size=16).hexdigest()


# --- identity -------------------------------------------------------------------------------------


def post_key(guid: str | None, url: str | None, title: str, text: str) -> str:
    """The post's key within its source: GUID, else canonical URL, else a content hash (module docstring).

    Takes the raw fields or the normalised ones alike: ``post_key(item.guid, item.url, item.title,
    item.text) == normalize(item, ...).key``.
    """
    key = _guid_key(guid)
    if key is None:
        key = canonical_url(url)
    if key is None:
        return "hash:" + content_hash(title, text)
    if len(key) > MAX_KEY_CHARS:
        return "key-hash:" + hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()
    return key


def _guid_key(guid: str | None) -> str | None:
    return None if guid is None else _guid_key_of(guid)


@functools.lru_cache(maxsize=4096)  # a poll asks for each item's key more than once (and a re-poll again)
def _guid_key_of(guid: str) -> str | None:
    guid = _one_line(guid)  # still opaque, but no control characters or surrogates SQLite would refuse
    if not guid:
        return None
    if guid[:8].lower().startswith(("http://", "https://")):
        return _canonical(guid, None, keep_fragment=True) or guid
    return guid


# --- the stage ------------------------------------------------------------------------------------


def normalize(
    item: RawItem, *, source: str, now: datetime, first_seen_at: datetime | None = None, key: str | None = None
) -> Post:
    """The Post for `item` seen in `source` at `now`.

    `first_seen_at` is the stored post's value when the post is already known (an edit keeps it);
    otherwise `now`. Naive datetimes are taken as UTC. `key`: the item's `post_key`, when the caller has it.
    """
    seen = _utc(first_seen_at if first_seen_at is not None else now)
    published = seen if item.published is None else min(_utc(item.published), seen)
    title, text = _title(item.title), _body(item.text)
    author = _one_line(item.author, MAX_AUTHOR_CHARS) if item.author else ""
    return Post(
        source=source,
        key=key if key is not None else post_key(item.guid, item.url, title, text),
        url=canonical_url(item.url),
        title=title,
        text=text,
        author=author or None,
        published_at=published,
        first_seen_at=seen,
        content_hash=_content_hash(title, text),
        parent_key=_parent_key(item.parent_ref),
        extra=tuple((clean_text(k)[:100], clean_text(v)[:1000]) for k, v in item.extra[:50]),
        raw_digest=item.raw_digest,
    )


def _parent_key(ref: str | None) -> str | None:
    """The article's key from a comment's reference (its guid, else its url), by the same key rule."""
    return post_key(ref, None, "", "") if _guid_key(ref) is not None else None


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
