"""monitor.normalize: canonical URLs, clean text, keys, content hashes, RawItem -> Post."""

from __future__ import annotations

import ast
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from monitor import normalize as norm_module
from monitor.normalize import (
    MAX_KEY_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    TRACKING_PARAMS,
    canonical_url,
    clean_text,
    content_hash,
    normalize,
    post_key,
)
from monitor.types import RawItem

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# --- canonical_url: examples ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://EXAMPLE.org:80/a?utm_source=x&b=2&a=1#frag", "http://example.org/a?a=1&b=2"),
        ("HTTPS://Example.ORG:443", "https://example.org/"),
        ("https://example.org:8443/x", "https://example.org:8443/x"),
        ("http://example.org:443/x", "http://example.org:443/x"),  # 443 is no default for http
        ("  https://example.org/a b\t\n ", "https://example.org/a%20b"),
        ("https://example.org/a/./b/../c", "https://example.org/a/c"),
        ("https://example.org/a/b/..", "https://example.org/a/"),
        ("https://example.org/%7euser/%2f%3F?q=%7e%2a", "https://example.org/~user/%2F%3F?q=~%2A"),
        ("https://example.org/100%", "https://example.org/100%25"),
        ("https://example.org/?", "https://example.org/"),
        ("https://example.org/?&&b=&a", "https://example.org/?a&b="),
        ("https://user:secret@example.org/", "https://example.org/"),
        ("https://example.org./x", "https://example.org/x"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("https://example.org/?UTM_Campaign=1&FBCLID=2&gclid=3&yclid=4&ysclid=5&id=7", "https://example.org/?id=7"),
        ("https://example.org/?utm%5Fsource=x&id=1", "https://example.org/?id=1"),
        ("https://example.org/новости?q=мир", "https://example.org/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8?q=%D0%BC%D0%B8%D1%80"),
    ],
)  # fmt: skip
def test_canonical_url_examples(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_the_design_example_equals_its_canonical_form() -> None:
    assert canonical_url("http://EXAMPLE.org:80/a?utm_source=x&b=2&a=1#frag") == canonical_url(
        "http://example.org/a?a=1&b=2"
    )


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("/news/1", "https://example.org/feed.xml", "https://example.org/news/1"),
        ("../b?x=1#f", "https://example.org/a/c/d", "https://example.org/a/b?x=1"),
        ("//cdn.example.org/img", "https://example.org/", "https://cdn.example.org/img"),
        ("?page=2", "https://example.org/list?page=1", "https://example.org/list?page=2"),
        ("https://other.org/x", "https://example.org/", "https://other.org/x"),
        ("", "https://example.org/", None),
    ],
)
def test_relative_urls_resolve_against_base(url: str, base: str, expected: str | None) -> None:
    assert canonical_url(url, base) == expected


def test_idn_hosts_become_lower_case_punycode() -> None:
    assert canonical_url("https://Пример.РФ/путь") == "https://xn--e1afmkfd.xn--p1ai/%D0%BF%D1%83%D1%82%D1%8C"
    assert canonical_url("https://XN--E1AFMKFD.xn--p1ai/") == "https://xn--e1afmkfd.xn--p1ai/"
    assert canonical_url("https://пример.рф/") == canonical_url("https://xn--e1afmkfd.xn--p1ai/")


@pytest.mark.parametrize(
    "url",
    [None, "", "   ", "ftp://example.org/x", "mailto:a@example.org", "javascript:alert(1)", "data:text/plain,hi",
     "file:///etc/passwd", "tg://resolve?domain=x", "example.org/x", "http://", "http:///path",
     "http://exa mple.org/", "http://example.org:99999/", "http://example.org:port/", "http://[::1/",
     "http://ex\ud800ample.org/"],
)  # fmt: skip
def test_non_http_or_broken_urls_have_no_canonical_form(url: str | None) -> None:
    assert canonical_url(url) is None


# --- canonical_url: properties --------------------------------------------------------------------

_HOSTS = st.sampled_from(
    ["example.org", "EXAMPLE.org", "news.example.kz", "пример.рф", "Қазақстан.kz", "xn--p1ai", "127.0.0.1",
     "[::1]", "example.org."]
)  # fmt: skip
# inside one query pair: no pair or fragment separators, nothing the stripping of the whole URL would eat
_PART = st.characters(exclude_characters="#&=\ufeff", exclude_categories=("Cc", "Cs", "Zs"))
_NAMES = st.one_of(
    st.sampled_from(sorted(TRACKING_PARAMS)),
    st.sampled_from(["utm_source", "UTM_MEDIUM", "utm_", "id", "page", "q", "a", "b", "%7Eid", "x%26y"]),
    st.text(_PART, max_size=6),
)
_PAIRS = st.lists(st.tuples(_NAMES, st.text(_PART, max_size=8)), max_size=6)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "HtTpS"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080", ":0080"]))
    path = draw(st.text(max_size=20))
    query = "&".join(f"{n}={v}" for n, v in draw(_PAIRS))
    frag = draw(st.text(max_size=5))
    return f"{scheme}://{draw(_HOSTS)}{port}/{path}?{query}#{frag}"


@given(st.one_of(urls(), st.text(max_size=40).map(lambda s: "http://example.org/" + s), st.text(max_size=30)))
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once
    if once is not None:
        assert once.isascii()
        assert once.startswith(("http://", "https://"))
        assert "#" not in once


@given(urls(), st.text(max_size=20))
def test_resolved_urls_are_canonical_too(base: str, relative: str) -> None:
    once = canonical_url(relative, base)
    assert canonical_url(once) == once


@given(st.sampled_from(["example.org", "пример.рф"]), _PAIRS)
def test_tracking_parameters_never_survive(host: str, pairs: list[tuple[str, str]]) -> None:
    query = "&".join(f"{n}={v}" for n, v in pairs)
    out = canonical_url(f"https://{host}/a?{query}")
    assert out is not None
    for pair in urlsplit(out).query.split("&"):
        name = pair.partition("=")[0].lower()
        assert name not in TRACKING_PARAMS
        assert not name.startswith("utm_")


@given(_PAIRS, st.randoms(use_true_random=False))
def test_query_order_does_not_matter(pairs: list[tuple[str, str]], rng: object) -> None:
    shuffled = list(pairs)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    a = canonical_url("https://example.org/p?" + "&".join(f"{n}={v}" for n, v in pairs))
    b = canonical_url("https://example.org/p?" + "&".join(f"{n}={v}" for n, v in shuffled))
    assert a == b


# --- clean_text / content_hash --------------------------------------------------------------------


def test_clean_text_examples() -> None:
    raw = "  Hello\u00a0\u00a0 world\x00\x07!\r\n\r\n\r\n\r\n  Next\tline \u200b\ufeff\r\nend \u2028last  "
    assert clean_text(raw) == "Hello world!\n\nNext line\nend\nlast"
    assert clean_text("e\u0301t\u00e9") == "\u00e9t\u00e9"  # NFC
    assert clean_text("Қазақстан — Казахстан\n\n\n\nЁлка") == "Қазақстан — Казахстан\n\nЁлка"
    assert clean_text("lone \ud800 surrogate") == "lone surrogate"
    assert clean_text("infor\xadma\u200btion") == "information"
    assert clean_text("\n\n \t \n") == ""


@given(st.text(max_size=200))
def test_clean_text_is_idempotent_and_clean(s: str) -> None:
    once = clean_text(s)
    assert clean_text(once) == once
    assert "  " not in once
    assert "\n\n\n" not in once
    assert once == once.strip()
    assert unicodedata.is_normalized("NFC", once)
    assert all(ch == "\n" or unicodedata.category(ch) not in {"Cc", "Cs", "Zl", "Zp"} for ch in once)
    once.encode("utf-8")  # storable


def test_content_hash_is_stable_across_releases() -> None:
    # stored hashes decide whether a post changed: this value must never change silently
    assert content_hash("Title", "Body text.") == "2aa3f98ecc2fcea63abbf8ca8e598621"


def test_content_hash_reads_title_and_text_apart() -> None:
    assert content_hash("ab", "c") != content_hash("a", "bc")
    assert content_hash("", "x") != content_hash("x", "")


def test_content_hash_sees_edits_but_not_whitespace() -> None:
    assert content_hash("T", "a  b\n\nc ") == content_hash(" T ", "a b c")
    assert content_hash("T", "a b c") != content_hash("T", "a b C")
    assert content_hash("T", "a b c") != content_hash("T", "a b c.")


_WORDS = st.lists(st.sampled_from(["Народный", "совет", "Халық", "кеңесі", "People's", "Council", "42", "—"]),
                  min_size=1, max_size=12)  # fmt: skip


@given(_WORDS, st.lists(st.sampled_from([" ", "  ", "\n", "\t", "\u00a0", " \n\n\n "]), min_size=12, max_size=12))
def test_content_hash_is_insensitive_to_whitespace_runs(words: list[str], seps: list[str]) -> None:
    spaced = "".join(w + s for w, s in zip(words, seps, strict=False))
    assert content_hash("t", spaced) == content_hash("t", " ".join(words))


# --- post_key -------------------------------------------------------------------------------------


def test_post_key_prefers_guid_then_url_then_content() -> None:
    assert post_key("  tag:example.org,2024:1 ", "https://example.org/a", "T", "x") == "tag:example.org,2024:1"
    assert post_key(None, "https://EXAMPLE.org/a?utm_source=rss", "T", "x") == "https://example.org/a"
    assert post_key("  ", "https://example.org/a", "T", "x") == "https://example.org/a"
    assert post_key(None, None, "T", "x") == "hash:" + content_hash("T", "x")
    assert post_key(None, "mailto:x@example.org", "T", "x") == "hash:" + content_hash("T", "x")


def test_url_guids_are_canonicalised_but_keep_their_fragment() -> None:
    a = post_key("https://example.org/?p=1&utm_source=rss&utm_campaign=mon#comment-2", None, "", "")
    b = post_key("https://EXAMPLE.org/?utm_campaign=tue&p=1#comment-2", None, "", "")
    assert a == b == "https://example.org/?p=1#comment-2"
    assert post_key("https://example.org/?p=1#comment-3", None, "", "") != a


def test_very_long_keys_are_digested() -> None:
    key = post_key("x" * (MAX_KEY_CHARS + 1), None, "", "")
    assert key.startswith("key-hash:")
    assert len(key) < 100
    assert key == post_key("x" * (MAX_KEY_CHARS + 1), None, "other", "content")


# --- normalize ------------------------------------------------------------------------------------


def _item(**kw: object) -> RawItem:
    fields: dict[str, object] = {"guid": None, "url": "https://example.org/a", "title": "T", "text": "x"}
    fields.update(kw)
    return RawItem(**fields)  # type: ignore[arg-type]


def test_an_item_without_dates_is_published_when_first_seen() -> None:
    post = normalize(_item(), source="s", now=NOW)
    assert post.first_seen_at == NOW
    assert post.published_at == NOW


def test_first_seen_at_is_kept_when_given() -> None:
    first = NOW - timedelta(days=3)
    post = normalize(_item(published=NOW - timedelta(days=5)), source="s", now=NOW, first_seen_at=first)
    assert post.first_seen_at == first
    assert post.published_at == NOW - timedelta(days=5)
    assert normalize(_item(), source="s", now=NOW, first_seen_at=first).published_at == first


def test_a_future_published_time_is_clamped_to_first_seen_at() -> None:
    post = normalize(_item(published=NOW + timedelta(minutes=3)), source="s", now=NOW)
    assert post.published_at == NOW
    first = NOW - timedelta(hours=1)
    post = normalize(_item(published=NOW - timedelta(minutes=30)), source="s", now=NOW, first_seen_at=first)
    assert post.published_at == first


_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=6)), timezone(timedelta(hours=-5))]),
)  # fmt: skip


@given(_TIMES, st.none() | _TIMES, st.none() | _TIMES)
def test_published_is_never_after_first_seen(now: datetime, published: datetime | None,
                                             first: datetime | None) -> None:  # fmt: skip
    post = normalize(_item(published=published), source="s", now=now, first_seen_at=first)
    assert post.published_at <= post.first_seen_at
    assert post.first_seen_at == (first if first is not None else now)
    assert post.published_at.tzinfo == UTC
    assert post.first_seen_at.tzinfo == UTC


def test_naive_datetimes_are_read_as_utc() -> None:
    post = normalize(_item(published=datetime(2026, 1, 1, 8, 0)), source="s", now=datetime(2026, 3, 1))
    assert post.published_at == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    assert post.first_seen_at == datetime(2026, 3, 1, tzinfo=UTC)


def test_normalize_cleans_fields_and_derives_identity() -> None:
    item = RawItem(
        guid=None,
        url="HTTPS://Example.org/news/1?utm_source=tg&id=5#top",
        title="  Сепаратизм:\n  новый   закон ",
        text="Первый абзац.\r\n\r\n\r\nВторой\u00a0абзац  — Қазақстан.",
        author="  ",
        parent_ref="https://example.org/news?utm_medium=x",
    )
    post = normalize(item, source="city-news", now=NOW)
    assert post.source == "city-news"
    assert post.url == "https://example.org/news/1?id=5"
    assert post.key == post.url
    assert post.title == "Сепаратизм: новый закон"
    assert post.text == "Первый абзац.\n\nВторой абзац — Қазақстан."
    assert post.author is None
    assert post.content_hash == content_hash(item.title, item.text)
    assert post.parent_key == "https://example.org/news"


def test_comment_parent_refs_follow_the_key_rule() -> None:
    assert normalize(_item(parent_ref=" tag:x,1 "), source="s", now=NOW).parent_key == "tag:x,1"
    assert normalize(_item(parent_ref=None), source="s", now=NOW).parent_key is None
    assert normalize(_item(parent_ref="  "), source="s", now=NOW).parent_key is None


def test_long_texts_and_titles_are_capped() -> None:
    post = normalize(_item(title="t " * MAX_TITLE_CHARS, text="word " * MAX_TEXT_CHARS), source="s", now=NOW)
    assert len(post.title) <= MAX_TITLE_CHARS
    assert len(post.text) <= MAX_TEXT_CHARS


_FIELD = st.text(max_size=40) | st.sampled_from(["", "  \n ", "Народный совет\n\n\n\nХалық кеңесі"])


@given(st.none() | st.text(max_size=12), st.none() | urls(), _FIELD, _FIELD)
def test_post_key_and_hash_of_raw_fields_match_normalize(guid: str | None, url: str | None,
                                                         title: str, text: str) -> None:  # fmt: skip
    item = RawItem(guid=guid, url=url, title=title, text=text)
    post = normalize(item, source="s", now=NOW)
    assert post_key(guid, url, title, text) == post.key
    assert content_hash(title, text) == post.content_hash
    again = normalize(RawItem(guid=post.key, url=post.url, title=post.title, text=post.text), source="s", now=NOW)
    assert (again.url, again.title, again.text, again.content_hash) == (post.url, post.title, post.text,
                                                                        post.content_hash)  # fmt: skip


def test_repeated_polls_of_one_item_give_one_key() -> None:
    polls = [
        _item(guid="https://example.org/p/1?utm_source=rss&utm_campaign=a", title="T", text="v1"),
        _item(guid="https://example.org/p/1?utm_campaign=b&utm_source=rss", title="T (edited)", text="v2"),
    ]
    keys = {normalize(i, source="s", now=NOW).key for i in polls}
    assert keys == {"https://example.org/p/1"}


def test_the_module_is_pure() -> None:
    tree = ast.parse(Path(norm_module.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    allowed = {"__future__", "hashlib", "re", "unicodedata", "datetime", "urllib.parse", "monitor.worktypes"}
    assert imported <= allowed | {"functools"}  # functools: a cache of canonical URLs (a pure function's results)
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not calls & {"hash", "open", "print"}  # builtin hash() is salted per process


@given(st.text(max_size=30))
def test_any_guid_gives_a_storable_key(guid: str) -> None:
    assume(guid.strip())
    key = post_key(guid, None, "", "")
    key.encode("utf-8")
    assert key


@given(
    st.from_regex(
        r"https?://[a-z0-9_-]{1,8}(\.[a-z0-9_-]{1,8}){0,2}(/[A-Za-z0-9._~-]{0,6}){0,4}"
        r"(\?((utm_[a-z]{1,3}|fbclid|[A-Za-z0-9._~-]{0,4})(=[A-Za-z0-9._~=-]{0,4})?&?){0,4})?",
        fullmatch=True,
    ),
    st.booleans(),
)
def test_the_fast_path_for_plain_urls_agrees_with_the_full_route(url: str, guid: bool) -> None:
    from monitor.normalize import _canonical_cached  # the full route, under the fast path

    assert canonical_url(url) == _canonical_cached(url, None, False)
    if guid:  # a URL GUID keeps its fragment: there is none on the fast path
        assert post_key(url, None, "", "") == _canonical_cached(url, None, True)
