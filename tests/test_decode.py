"""Bytes -> text: charset from header, BOM, declarations, else detection; gzip left on by the transport."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.collectors.decode import (
    charset_from_content_type,
    choose_encoding,
    declared_encoding,
    decode,
    decode_body,
    gunzip_if_gzip,
)
from monitor.exceptions import ParseError

RUSSIAN = (
    "Сепаратисты заявили о создании народного совета. Власти области назвали это провокацией, "
    "а жители города вышли на улицы. Ёлки, подъезды и объявления - всё как обычно."
)
PAGE = "<html><head><title>Новости</title></head><body><h1>Главное</h1><p>{}</p></body></html>"


def test_windows_1251_page_without_any_charset_is_detected() -> None:
    body = PAGE.format(RUSSIAN).encode("cp1251")
    assert choose_encoding(body) == "cp1251"
    assert RUSSIAN in decode_body(body)


def test_short_windows_1251_text_is_detected() -> None:
    body = "<p>Народный совет</p>".encode("cp1251")
    assert decode_body(body) == "<p>Народный совет</p>"


def test_koi8_r_page_without_any_charset_is_detected() -> None:
    body = PAGE.format(RUSSIAN).encode("koi8-r")
    assert choose_encoding(body) == "koi8-r"
    assert RUSSIAN in decode_body(body)


def test_http_charset_wins_for_legacy_bytes() -> None:
    body = PAGE.format(RUSSIAN).encode("koi8-r")
    assert decode_body(body, "text/html; charset=KOI8-R") == PAGE.format(RUSSIAN)


@pytest.mark.parametrize(
    "head",
    [
        '<meta charset="windows-1251">',
        "<meta charset=windows-1251>",
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">',
    ],
)
def test_meta_charset(head: str) -> None:
    body = f"<html><head>{head}</head><body>{RUSSIAN}</body></html>".encode("cp1251")
    assert declared_encoding(body) == "cp1251"
    assert RUSSIAN in decode_body(body)


def test_xml_declaration() -> None:
    body = f'<?xml version="1.0" encoding="koi8-r"?><rss><title>{RUSSIAN}</title></rss>'.encode("koi8-r")
    assert declared_encoding(body) == "koi8-r"
    assert RUSSIAN in decode_body(body)


def test_valid_utf8_beats_a_wrong_label() -> None:
    body = f'<meta charset="windows-1251"><p>{RUSSIAN}</p>'.encode()
    assert decode_body(body, "text/html; charset=iso-8859-1").endswith(f"{RUSSIAN}</p>")


def test_latin1_server_default_on_a_russian_page_is_not_believed() -> None:
    body = PAGE.format(RUSSIAN).encode("cp1251")
    assert RUSSIAN in decode_body(body, "text/html; charset=ISO-8859-1")


def test_latin1_text_stays_latin1() -> None:
    text = "Grüße aus München, café crème, São Paulo — naïve façade"
    assert decode_body(text.encode("cp1252")) == text
    plain = text.replace("—", "-")
    assert decode_body(plain.encode("latin-1"), "text/plain; charset=iso-8859-1") == plain


@pytest.mark.parametrize(
    ("bom", "codec"),
    [(b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")],
)
def test_bom_wins_and_is_dropped(bom: bytes, codec: str) -> None:
    body = bom + "<p>Привет</p>".encode(codec)
    assert decode_body(body, "text/html; charset=windows-1251") == "<p>Привет</p>"


def test_utf16_without_bom() -> None:
    assert decode_body("<rss>Привет</rss>".encode("utf-16-le")) == "<rss>Привет</rss>"


def test_unknown_labels_are_ignored() -> None:
    assert charset_from_content_type("text/html; charset=bogus") is None
    assert charset_from_content_type("text/html") is None
    assert charset_from_content_type(None) is None
    assert charset_from_content_type('text/html; charset="Windows-1251"') == "cp1251"


def test_corpus_html_page_decodes(corpus: Path) -> None:
    text = decode_body((corpus / "html/ru_football-ua_article-with-comments.html").read_bytes())
    assert "Подольски" in text


def test_gunzip_only_touches_gzip() -> None:
    assert gunzip_if_gzip(b"<rss/>") == b"<rss/>"
    assert gunzip_if_gzip(gzip.compress(b"<rss/>")) == b"<rss/>"


def test_gunzip_corpus_file(corpus: Path) -> None:
    body = gunzip_if_gzip((corpus / "malformed/real_ru_oren-ru_gzip-bytes-named-xml.xml.gz").read_bytes())
    assert body == (corpus / "rss/ru_oren-ru_windows-1251.xml").read_bytes()


def test_gunzip_is_bounded() -> None:
    bomb = gzip.compress(b"\0" * 2_000_000)
    with pytest.raises(ParseError, match="inflates past"):
        gunzip_if_gzip(bomb, max_bytes=1_000_000)


def test_gunzip_of_a_truncated_stream_keeps_what_it_got() -> None:
    body = gzip.compress(b"<rss>" + " ".join(str(i) for i in range(5000)).encode() + b"</rss>")
    assert gunzip_if_gzip(body[: len(body) // 2]).startswith(b"<rss>")


def test_corrupt_gzip_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="gzip"):
        gunzip_if_gzip(b"\x1f\x8b" + b"\xff" * 40)


@given(st.binary(max_size=2000), st.one_of(st.none(), st.text(max_size=60)))
def test_decode_never_raises(body: bytes, content_type: str | None) -> None:
    assert isinstance(decode_body(body, content_type), str)


# --- UTF-8 with damage: the label and most of the bytes agree -------------------------------------------------


def cut_mid_character(text: str) -> bytes:
    """UTF-8 of `text` with its last character cut after its first byte (a feed truncating a title)."""
    data = text.encode("utf-8")
    return data[: len(data) - len(text[-1].encode("utf-8")) + 1]


@pytest.mark.parametrize("content_type", ["application/rss+xml; charset=utf-8", "text/html; charset=UTF-8", None])
def test_one_bad_byte_in_labelled_utf8_is_replaced_not_read_as_koi8(content_type: str | None) -> None:
    label = "" if content_type else '<meta charset="utf-8">'
    body = f"<p>{label}{RUSSIAN}</p><p>".encode() + cut_mid_character("Сепаратисты") + b"</p>"
    decoded = decode(body, content_type)
    assert decoded.encoding == "utf-8"
    assert RUSSIAN in decoded.text and "Сепаратист\ufffd" in decoded.text
    assert decoded.warning is not None and decoded.warning.startswith("1 invalid UTF-8 byte sequence replaced")
    assert choose_encoding(body, content_type) == "utf-8"


def test_many_cut_titles_still_read_as_utf8_with_the_count() -> None:
    titles = [cut_mid_character(f"Сепаратисты {n} заявили") for n in range(5)]
    body = b"<?xml version='1.0' encoding='utf-8'?><rss>" + b"".join(b"<t>" + t + b"</t>" for t in titles) + b"</rss>"
    decoded = decode(body, None)
    assert decoded.encoding == "utf-8" and decoded.text.count("Сепаратисты") == 5
    assert decoded.warning is not None and decoded.warning.startswith("5 invalid UTF-8 byte sequences")


@pytest.mark.parametrize("codec", ["cp1251", "koi8-r", "latin-1"])
def test_a_utf8_label_on_legacy_bytes_is_still_a_lie(codec: str) -> None:
    text = RUSSIAN if codec != "latin-1" else "Les séparatistes ont déclaré: « ça suffit », été après été, à Zürich."
    body = f"<html><body><p>{text}</p><p>{text}</p></body></html>".encode(codec)
    decoded = decode(body, "text/html; charset=utf-8")
    assert decoded.encoding != "utf-8" and text in decoded.text and decoded.warning is None


def test_valid_utf8_gets_no_warning() -> None:
    assert decode(PAGE.format(RUSSIAN).encode(), "text/html; charset=utf-8").warning is None
    assert decode("a literal \ufffd in the text".encode(), "text/plain; charset=utf-8").warning is None
