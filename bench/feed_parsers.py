"""Which feed parser reads the corpus correctly, and how fast: feedparser, fastfeedparser, ours (lxml).

    .venv/bin/pip install feedparser fastfeedparser      # the libraries compared (bench only)
    .venv/bin/python bench/feed_parsers.py [--repeat N] [--corpus DIR] [--verbose]

Every candidate gets the same bytes (gzip already undone by decode.gunzip_if_gzip, as the feed
collector does for every body) and the fetch URL; a library's relative links are joined to that URL
(what a thin wrapper would do). A file is read CORRECTLY when: no exception (or a ParseError where
the file has nothing to read); the item count equals the true count in EXPECTED (from the corpus
PROVENANCE.md, with the corrections noted there); every title is free of mojibake and the first
title is the expected one where given (the Cyrillic and other non-UTF-8 files); every item link is
an absolute http(s) URL; every item that carries a date in the file has one.

Speed: items per second over all rss/, atom/ and malformed/ files, best of --repeat runs, two ways
for the libraries: their own output ("parse only"), and turned into plain-text items the way the
pipeline needs them (title and body through htmltext, "-> RawItem"). Ours always does the latter.
"""

from __future__ import annotations

import argparse
import gc
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from monitor.collectors.decode import gunzip_if_gzip
from monitor.collectors.feedparse import parse_feed
from monitor.collectors.htmltext import html_to_text
from monitor.exceptions import ParseError

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus"


@dataclass(frozen=True)
class Expect:
    """The truth about one corpus file."""

    items: int | None  # None: nothing to read, a ParseError (or exception) is the right answer
    dated: int | None = None  # items that carry a date in the file; None = all of them
    first_title: str | None = None  # prefix of the first item's title, where decoding is at stake
    feed_title: str | None = None  # prefix of the feed's title, where that is the only content
    url: str = "https://example.org/feed.xml"  # the fetch URL (relative links resolve against it)
    content_type: str | None = None


EXPECTED: dict[str, Expect] = {
    # rss/
    "rss/de_golem_iso-8859-1.xml": Expect(40, first_title="Red Dead Redemption 2: Hinweise auf PC-Umsetzung"),
    "rss/de_heise_rdf.xml": Expect(60, dated=0, first_title="OLED-TVs: Vorsichtsmaßnahmen"),
    "rss/en_al-monitor_xml-base.xml": Expect(20),
    "rss/en_aljazeera_no-xml-decl.xml": Expect(25),
    "rss/en_bbc-world.xml": Expect(33),
    "rss/en_blog_missing-dates.xml": Expect(17, dated=10),
    "rss/en_blog_relative-links.xml": Expect(13, url="https://kopiascsaba.hu/blog/index.xml"),
    "rss/en_cnn.xml": Expect(69, dated=52),
    "rss/en_davidbau_rdf_iso-8859-1.xml": Expect(15, url="https://davidbau.com/index.rdf"),
    "rss/en_dawn-pk_escaped-html.xml": Expect(30),
    "rss/en_dw_rdf.xml": Expect(141),
    "rss/en_foreignpolicy.xml": Expect(25),
    "rss/en_koreatimes_bad-dates.xml": Expect(195),
    "rss/en_mercopress_crlf-no-decl.xml": Expect(10),
    "rss/en_nytimes-world.xml": Expect(57),
    "rss/en_reddit-frontpage.xml": Expect(24),
    "rss/en_restofworld.xml": Expect(12),
    "rss/fr_lemonde.xml": Expect(21, first_title="JO d’hiver 2018 : pas de médaille"),
    "rss/pt_jn-pt_iso-8859-1.xml": Expect(40, first_title="Mãe de utente é a nova presidente da Raríssimas"),
    "rss/ru_aif-ru.xml": Expect(1, first_title="СМИ: собака в Таиланде спасла"),
    "rss/ru_ibash-org-ru_windows-1251.xml": Expect(50, first_title="Цитата #17703"),
    "rss/ru_koi8-r_synthetic.xml": Expect(2, first_title="Первая новость"),
    "rss/ru_meduza-io_trimmed.xml": Expect(4, first_title="Макрон: ситуация становится"),
    "rss/ru_oren-ru_windows-1251.xml": Expect(10, first_title="В Бузулуке главные стройплощадки"),
    "rss/uk_suspilne-media_ukrnet.xml": Expect(20, first_title="Торгівля між Росією та Китаєм"),
    "rss/ur_bbc-urdu.xml": Expect(26, first_title="امریکی عسکری امداد کی بندش"),
    # atom/
    "atom/de_heise.atom": Expect(15, first_title="Java-Anwendungsserver: Red Hat gibt WildFly 10 frei"),
    "atom/en_bearblog_escaped-html.atom": Expect(10),
    "atom/en_blogger.atom": Expect(25),
    "atom/en_github-commits.atom": Expect(20),
    "atom/en_intertwingly_blog.atom": Expect(20, url="http://intertwingly.net/blog/index.atom"),
    "atom/en_kottke_cdata.atom": Expect(60),
    "atom/en_rainmeter-forum_phpbb.atom": Expect(10, first_title="Help: Rainmeter Skins • Re:"),
    "atom/en_talkingpointsmemo.atom": Expect(20, url="http://talkingpointsmemo.com/feed/all"),
    "atom/en_youtube-channel.atom": Expect(15),
    # malformed/ (hand-written cases hold 0 or 1 item; see tests/golden/feeds/README.md)
    "malformed/ffp_declares-utf16-is-ascii_synthetic.xml": Expect(1, first_title="UTF-16 Entry 1"),
    "malformed/fp_aaa_illformed_truncated-root.xml": Expect(0),
    "malformed/fp_bogus_encoding.xml": Expect(0),
    "malformed/fp_encoding_mismatch_crash.xml": Expect(1, dated=0),
    "malformed/fp_high_bit_date_iso-8859-7.xml": Expect(0),
    "malformed/fp_http_text_plain.xml": Expect(0, content_type="text/plain"),
    "malformed/fp_invalid-bytes-with-bom.xml": Expect(0, feed_title="Valid UTF8: Ѩ"),
    "malformed/fp_koi8r_no-encoding-declared.xml": Expect(1, dated=0, first_title="Как пережить новогоднюю ночь"),
    "malformed/fp_rss_empty_document.xml": Expect(None),
    "malformed/fp_rss_incomplete_cdata.xml": Expect(0),  # its one <item> is cut before any content
    "malformed/fp_undeclared_entity.xml": Expect(0, feed_title="testing &doesnotexist; entity"),
    "malformed/fp_undeclared_namespace.xml": Expect(0),
    "malformed/mf_invalid-prolog_encoding.xml": Expect(1, dated=0, first_title="Café", feed_title="테스트 피드"),
    "malformed/nf_saxerror.xml": Expect(3, dated=0),
    "malformed/real_en_androidauthority_leading-blank-lines.xml": Expect(1),
    "malformed/real_en_dylanharris_broken-prolog.xml": Expect(35, first_title="jenni tucker"),
    "malformed/real_en_feedburner_illegally-nested-items.xml": Expect(10),  # 20 <item> tags, 10 top-level
    "malformed/real_en_theguardian-world_unescaped-ampersand.xml": Expect(54),
    "malformed/real_it_lucasdelirium_raw-html-in-description.xml": Expect(1),
    "malformed/real_ru_oren-ru_gzip-bytes-named-xml.xml.gz": Expect(10, first_title="В Бузулуке главные"),
}

_MOJIBAKE = re.compile(r"[\ufffd]|Ð[\x80-\xbf]|Ñ[\x80-\xbf]|Ã[\x80-\xbf]|â€|Ð¾|Ñ\x81")


@dataclass(frozen=True)
class Item:
    """The fields the checks look at, as a candidate produced them."""

    title: str
    link: str | None
    text: str
    published: datetime | str | None


@dataclass(frozen=True)
class Result:
    feed_title: str | None
    items: list[Item]


Candidate = Callable[[bytes, Expect], Result]


def _keep(items: list[Item]) -> list[Item]:
    """The pipeline's rule for every candidate: an item with no title, text or link is no item."""
    return [i for i in items if i.title.strip() or i.text.strip() or i.link]


def ours(body: bytes, expect: Expect) -> Result:
    feed = parse_feed(body, url=expect.url, content_type=expect.content_type)
    items = [Item(i.title, i.url, i.text, i.published) for i in feed.items]
    return Result(feed.title, items)


def _fp_entry(entry: Any, url: str, plain: bool) -> Item:
    text = ""
    if entry.get("content"):
        text = max((c.get("value", "") for c in entry["content"]), key=len)
    summary = entry.get("summary", "")
    if len(summary) > len(text):
        text = summary
    title = entry.get("title", "")
    if plain:
        title, text = " ".join(html_to_text(title).split()), html_to_text(text)
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    link = entry.get("link")
    return Item(title, urljoin(url, link) if link else None, text, str(published) if published else None)


def feedparser_candidate(plain: bool) -> Candidate:
    import feedparser

    def run(body: bytes, expect: Expect) -> Result:
        headers = {"content-location": expect.url}
        if expect.content_type:
            headers["content-type"] = expect.content_type
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            doc = feedparser.parse(body, response_headers=headers, sanitize_html=False)
        if not doc.entries and not doc.feed and doc.get("bozo"):
            raise ValueError(str(doc.get("bozo_exception")))
        items = [_fp_entry(e, expect.url, plain) for e in doc.entries]
        return Result(doc.feed.get("title"), _keep(items))

    return run


def fastfeedparser_candidate(plain: bool) -> Candidate:
    import fastfeedparser

    def run(body: bytes, expect: Expect) -> Result:
        doc = fastfeedparser.parse(body)
        items = []
        for e in doc.get("entries", []):
            text = ""
            for c in e.get("content") or []:
                if len(c.get("value", "")) > len(text):
                    text = c["value"]
            if len(e.get("description") or "") > len(text):
                text = e["description"]
            title = e.get("title") or ""
            if plain:
                title, text = " ".join(html_to_text(title).split()), html_to_text(text)
            link = e.get("link")
            published = e.get("published") or e.get("updated")
            items.append(Item(title, urljoin(expect.url, link) if link else None, text, published))
        return Result(doc.get("feed", {}).get("title"), _keep(items))

    return run


def check(name: str, candidate: Candidate, body: bytes, expect: Expect) -> tuple[bool, str]:
    """(correct?, why not)."""
    try:
        result = candidate(body, expect)
    except ParseError as exc:
        return (expect.items is None, f"ParseError: {exc}")
    except Exception as exc:  # the libraries raise what they raise
        return (expect.items is None, f"{type(exc).__name__}: {str(exc)[:80]}")
    if expect.items is None:
        return False, f"read {len(result.items)} items from a document with nothing to read"
    items = result.items
    problems = []
    if len(items) != expect.items:
        problems.append(f"{len(items)} items, expected {expect.items}")
    bad_titles = [i.title for i in items if _MOJIBAKE.search(i.title)]
    if bad_titles:
        problems.append(f"mojibake title {bad_titles[0][:40]!r}")
    if expect.first_title and (not items or not " ".join(items[0].title.split()).startswith(expect.first_title)):
        problems.append(f"first title {(items[0].title if items else None)!r:.50}")
    if expect.feed_title and not (result.feed_title or "").startswith(expect.feed_title):
        problems.append(f"feed title {result.feed_title!r:.50}")
    relative = [i.link for i in items if i.link and not i.link.startswith(("http://", "https://"))]
    if relative:
        problems.append(f"relative link {relative[0]!r:.60}")
    dated = sum(1 for i in items if i.published)
    want_dated = expect.items if expect.dated is None else expect.dated
    if dated < min(want_dated, len(items)):
        problems.append(f"{dated} dated items, expected {want_dated}")
    return (not problems, "; ".join(problems))


def load() -> list[tuple[str, bytes, Expect]]:
    files = []
    for rel, expect in EXPECTED.items():
        files.append((rel, gunzip_if_gzip((CORPUS / rel).read_bytes()), expect))
    return files


def speed(candidate: Candidate, files: list[tuple[str, bytes, Expect]], repeat: int) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        gc.collect()
        count = 0
        start = time.perf_counter()
        for _rel, body, expect in files:
            try:
                count += len(candidate(body, expect).items)
            except Exception:  # a failure reads nothing; its time still counts
                continue
        best = min(best, time.perf_counter() - start)
    return count / best, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="say why each file failed")
    args = parser.parse_args()
    try:
        import fastfeedparser  # noqa: F401
        import feedparser  # noqa: F401
    except ImportError as exc:  # the libraries compared are not monitor's dependencies
        parser.exit(2, f"feed_parsers.py: {exc.name} is missing: .venv/bin/pip install feedparser fastfeedparser\n")
    files = load()
    candidates: list[tuple[str, Candidate, Candidate | None]] = [
        ("feedparser 6.0", feedparser_candidate(True), feedparser_candidate(False)),
        ("fastfeedparser 0.6", fastfeedparser_candidate(True), fastfeedparser_candidate(False)),
        ("ours (lxml strict -> repair -> recover)", ours, None),
    ]
    print(f"corpus: {CORPUS}  files: {len(files)}  repeat: {args.repeat}\n")
    header = (
        f"{'parser':42} | {'correct rss':>11} | {'atom':>5} | {'malformed':>9} | "
        f"{'items/s parse':>13} | {'items/s -> RawItem':>18}"
    )
    print(header)
    print("-" * len(header))
    failures: dict[str, list[str]] = {}
    for label, plain, raw in candidates:
        totals = {"rss": [0, 0], "atom": [0, 0], "malformed": [0, 0]}
        for rel, body, expect in files:
            ok, why = check(rel, plain, body, expect)
            folder = rel.split("/")[0]
            totals[folder][0] += ok
            totals[folder][1] += 1
            if not ok:
                failures.setdefault(label, []).append(f"{rel}: {why}")
        full_rate, _ = speed(plain, files, args.repeat)
        raw_rate = speed(raw, files, args.repeat)[0] if raw is not None else full_rate
        cells = [f"{ok}/{n}" for ok, n in totals.values()]
        print(f"{label:42} | {cells[0]:>11} | {cells[1]:>5} | {cells[2]:>9} | {raw_rate:>13,.0f} | {full_rate:>18,.0f}")
    if args.verbose:
        for label, lines in failures.items():
            print(f"\n{label} failed on:")
            for line in lines:
                print("  " + line)


if __name__ == "__main__":
    main()
