"""Bytes -> text for fetched bodies: choose the charset, and undo gzip that the transport left on.

Does no I/O. The charset comes from, in order of trust: a byte-order mark; the bytes being valid
UTF-8 (a legacy text is almost never valid UTF-8 by accident, while a wrong label is common); the
HTTP ``Content-Type`` charset; the document's own label (XML declaration, ``<meta charset>`` or
``<meta http-equiv>``); and last, detection. Detection knows the region: Cyrillic single-byte text is
told apart as windows-1251 or KOI8-R by letter case (the two code pages swap upper and lower case),
and only other text goes to charset-normalizer.

A body labelled UTF-8 whose bytes are mostly UTF-8 with a few broken sequences (a feed that cuts its
titles mid-character, common in this region) is UTF-8: the broken bytes become U+FFFD and `decode`
says how many in its warning. A UTF-8 label on bytes that are mostly not UTF-8 is a lie and is passed
over, as before.
"""

from __future__ import annotations

import codecs
import re
import zlib
from dataclasses import dataclass

from monitor.exceptions import ParseError

__all__ = [
    "MAX_GUNZIP_BYTES",
    "Decoded",
    "charset_from_content_type",
    "choose_encoding",
    "declared_encoding",
    "decode",
    "decode_body",
    "gunzip_if_gzip",
]

MAX_GUNZIP_BYTES = 64 * 1024 * 1024  # a gzip bomb stops here
_GZIP_MAGIC = b"\x1f\x8b"
_HEAD = 4096  # where a document's own charset label may be

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ALIASES = {  # labels seen in the wild that Python does not know, or knows under a stricter meaning
    "win-1251": "cp1251", "windows1251": "cp1251", "cp-1251": "cp1251", "x-cp1251": "cp1251",
    "x-mac-cyrillic": "mac-cyrillic", "koi8r": "koi8-r", "koi8": "koi8-r",
    # browsers read these labels as windows-1252, whose 0x80-0x9F are printable (curly quotes, dashes)
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252",
    "ascii": "cp1252", "iso8859-1": "cp1252", "l1": "cp1252",
}  # fmt: skip
_LATIN_FAMILY = frozenset({"cp1252", "latin-1", "iso8859-15", "ascii", "mac-roman"})
_CYRILLIC_SINGLE_BYTE = ("cp1251", "koi8-r")
_LATIN_CODE_PAGES = frozenset({
    "cp1250", "cp1252", "cp1254", "cp1257", "latin-1", "iso8859-2", "iso8859-15", "iso8859-9", "iso8859-13",
    "mac-roman", "mac-latin2", "cp850", "cp437",
})  # fmt: skip

_CT_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:+-]+)", re.IGNORECASE)
_XML_DECL = re.compile(rb"<\?xml[^>]{0,200}?encoding\s*=\s*[\"']?([\w.:+-]+)", re.IGNORECASE)
_META = re.compile(rb"<meta\b[^>]{0,500}?charset\s*=\s*[\"']?\s*([\w.:+-]+)", re.IGNORECASE)
_HIGH_RUN = re.compile(rb"[\x80-\xff]{2,}")
_HIGH = re.compile(rb"[\x80-\xff]")
_SNIFF = 256 * 1024  # bytes looked at by the Cyrillic heuristic
_MOSTLY = 4  # a UTF-8 label holds when valid multi-byte characters outnumber broken sequences this many times
_REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class Decoded:
    """A body as text, the codec used, and a warning when bytes had to be replaced."""

    text: str
    encoding: str
    warning: str | None = None


def gunzip_if_gzip(body: bytes, *, max_bytes: int = MAX_GUNZIP_BYTES) -> bytes:
    """Return `body` gunzipped when it is gzip bytes (magic 1f 8b) that nobody decoded, else unchanged.

    Raises ParseError if the result would pass `max_bytes` or the gzip data is corrupt. A truncated
    stream yields what was recovered.
    """
    if not body.startswith(_GZIP_MAGIC):
        return body
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise ParseError(f"gzip data is corrupt: {exc}") from exc
    if len(out) > max_bytes:
        raise ParseError(f"gzip body inflates past {max_bytes} bytes")
    if not out:
        raise ParseError("gzip body is empty or truncated")
    return out


def charset_from_content_type(content_type: str | None) -> str | None:
    """The codec named by a Content-Type header's charset parameter, if Python knows it."""
    if not content_type:
        return None
    match = _CT_CHARSET.search(content_type)
    return _codec(match.group(1)) if match else None


def declared_encoding(body: bytes) -> str | None:
    """The codec a document names for itself: XML declaration, else HTML ``<meta>`` (first 4 KB)."""
    head = body[:_HEAD]
    match = _XML_DECL.search(head) or _META.search(head)
    if match is None:
        return None
    return _codec(match.group(1).decode("ascii", "replace"))


def choose_encoding(body: bytes, content_type: str | None = None) -> str:
    """The Python codec name to decode `body` with (see the module docstring for the order)."""
    bom = _bom(body)
    if bom is not None:
        return bom[0]
    utf16 = _utf16_without_bom(body)
    if utf16 is not None:
        return utf16
    if body.isascii() or _is_utf8(body):
        return "utf-8"
    for label in (charset_from_content_type(content_type), declared_encoding(body)):
        if label == "utf-8" and _mostly_utf8(body):
            return "utf-8"  # a few broken sequences in UTF-8 text: decode_text replaces them and says so
        if label is None or label.startswith(("utf-8", "utf-16", "utf-32")):
            continue  # a UTF label on bytes that are not that UTF is a lie
        if label in _LATIN_FAMILY and _looks_cyrillic(body):
            continue  # a server default such as iso-8859-1 on a Russian page
        return label
    return detect_encoding(body)


def decode(body: bytes, content_type: str | None = None) -> Decoded:
    """Decode an HTML, XML, JSON or text body; undecodable bytes become U+FFFD (counted in the warning),
    a BOM is dropped."""
    encoding = choose_encoding(body, content_type)
    bom = _bom(body)
    if bom is not None:
        body = body[bom[1] :]
    text = body.decode(encoding, "replace")
    if encoding != "utf-8" or _REPLACEMENT not in text:
        return Decoded(text, encoding)
    broken = text.count(_REPLACEMENT) - body.count(b"\xef\xbf\xbd")  # minus U+FFFD the body itself holds
    if broken <= 0:
        return Decoded(text, encoding)
    first = text.index(_REPLACEMENT)
    plural = "s" if broken > 1 else ""
    return Decoded(
        text,
        encoding,
        f"{broken} invalid UTF-8 byte sequence{plural} replaced by U+FFFD (the first at character {first:,}); "
        "the rest was read as the UTF-8 the body is labelled",
    )


def decode_body(body: bytes, content_type: str | None = None) -> str:
    """`decode(...).text`: for callers that keep no warnings."""
    return decode(body, content_type).text


def detect_encoding(body: bytes) -> str:
    """Guess the codec of a body that is not UTF-8 and names no usable charset."""
    if _looks_cyrillic(body):
        return _cyrillic_code_page(body[:_SNIFF])
    from charset_normalizer import from_bytes  # noqa: PLC0415  # loaded when a body needs a guess (rare), not to read config

    best = from_bytes(body[:_SNIFF]).best()
    name = _codec(best.encoding) if best is not None else None
    if name is None or (name in _LATIN_CODE_PAGES and _decodes(body, "cp1252")):
        # a short Latin text fits many code pages; windows-1252 is by far the most common of them
        return "cp1252"
    return name


def _codec(label: str) -> str | None:
    label = label.strip().lower()
    label = _ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _ALIASES.get(name, name)


def _bom(body: bytes) -> tuple[str, int] | None:
    for mark, name in _BOMS:
        if body.startswith(mark):
            return name, len(mark)
    return None


def _utf16_without_bom(body: bytes) -> str | None:
    # "<" then NUL, or NUL then "<": an XML or HTML document in UTF-16 that lost its BOM
    head = body[:4].lstrip(b" \t\r\n")
    if head.startswith(b"<\x00") and body[:2] != b"<\x00\x00":
        return "utf-16-le"
    if head.startswith(b"\x00<"):
        return "utf-16-be"
    return None


def _decodes(body: bytes, codec: str) -> bool:
    try:
        body.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mostly_utf8(body: bytes) -> bool:
    """Valid multi-byte UTF-8 characters outnumber the broken sequences by far: UTF-8 with some damage."""
    sample = body[:_SNIFF]
    text = sample.decode("utf-8", "replace")
    broken = text.count(_REPLACEMENT) - sample.count(b"\xef\xbf\xbd")
    multibyte = len(text) - len(text.encode("ascii", "ignore")) - broken
    return multibyte > 0 and multibyte >= _MOSTLY * broken


def _looks_cyrillic(body: bytes) -> bool:
    """Most high bytes stand next to another high byte: words written in a non-Latin single-byte script.

    Latin-1 text has its accented letters one at a time between ASCII letters ("für", "été").
    """
    sample = body[:_SNIFF]
    high = len(_HIGH.findall(sample))
    if high < 8:
        return False
    in_runs = sum(len(run) for run in _HIGH_RUN.findall(sample))
    return in_runs >= 0.6 * high


def _cyrillic_code_page(sample: bytes) -> str:
    """windows-1251 or KOI8-R: whichever reading gives mostly lower-case letters, as prose has."""
    best, best_score = "cp1251", -1.0
    for name in _CYRILLIC_SINGLE_BYTE:
        text = sample.decode(name, "replace")
        lower = sum(1 for ch in text if "а" <= ch <= "я" or ch == "ё")
        upper = sum(1 for ch in text if "А" <= ch <= "Я" or ch == "Ё")
        score = lower / (lower + upper + 1)
        if score > best_score:
            best, best_score = name, score
    return best
