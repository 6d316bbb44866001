"""Topics with `transliterate: true` (monitor.match with monitor.translit), and `monitor search --transliterate`."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import translit
from monitor.match import Matcher, fold
from monitor.store.sqlite.schema import FTS_TOKENIZER
from monitor.types import Match, TopicSpec
from tests.conftest import RawServer, respond, run_monitor, write_config


def latin(*terms: str, all: Sequence[str] = (), none: Sequence[str] = ()) -> Matcher:
    return Matcher([TopicSpec("t", tuple(terms), tuple(all), tuple(none), transliterate=True)])


def hit(matcher: Matcher, text: str, title: str = "") -> str | None:
    found = matcher.match(title, text)
    return found[0].term if found else None


# The 1902 sample of Wikipedia's "Kazakh alphabets" in modern Cyrillic, its 2021 Latin transliteration, and
# the two plain-keyboard renderings a mirror of the page carries (marks dropped; apostrophe digraphs).
SAMPLE_CYRILLIC = (
    "Бұрыңғы өткен заманда, бір данышпан кісі, Бағдат шаһарының бір үлкен қазысының үйіне келіп қоныпты. "
    "Қазыменен сөйлесіп, қазыны сөзге жеңе беріпті."
)
SAMPLE_2021 = (
    "Būryñğy ötken zamanda, bır danyşpan kısı, Bağdat şaharynyñ bır ülken qazysynyñ üiıne kelıp qonypty. "
    "Qazymenen söilesıp, qazyny sözge jeñe berıptı."
)
SAMPLE_PLAIN = (
    "Buryngy otken zamanda, bir danyspan kisi, Bagdat saharynyn bir ulken qazysynyn uiine kelip qonypty. "
    "Qazymenen soilesip, qazyny sozge jene beripti."
)
SAMPLE_APOSTROPHES = (
    "Bu'ryn'g'y otken zamanda, bir danyshpan kisi, Bag'dat shaharynyn' bir ulken k'azysynyn' uiine kelip "
    "k'onypty. K'azymenen soilesip, k'azyny sozge zhen'e beripti."
)


def words_of(text: str) -> list[str]:
    return [w.strip(".,'") for w in text.split()]


@pytest.mark.parametrize("rendering", [SAMPLE_2021, SAMPLE_PLAIN, SAMPLE_APOSTROPHES])
def test_every_long_word_of_a_real_kazakh_sample_finds_its_latin_rendering(rendering: str) -> None:
    cyrillic, latin_words = words_of(SAMPLE_CYRILLIC), words_of(rendering)
    assert len(cyrillic) == len(latin_words)
    checked = 0
    for word, rendered in zip(cyrillic, latin_words, strict=True):
        if sum(translit.is_cyrillic(c) for c in word) < translit.MIN_LETTERS:
            continue
        matcher = latin(word)
        assert hit(matcher, f"... {rendered} ...") == word, (word, rendered)
        assert hit(matcher, f"... {rendered}x ...") is None  # whole words only
        checked += 1
    assert checked >= 12


RUSSIAN = [  # (Cyrillic, spellings by ICAO 2013, BGN/PCGN, GOST 7.79 B, the scholarly system and chat translit)
    ("Народный совет", ["Narodnyi sovet", "Narodnyy sovet", "Narodny'j sovet", "narodny sovet", "narodnij sovet"]),
    ("Щукин", ["Shchukin", "Shhukin", "Ščukin", "Schukin"]),
    ("Юрий Ельцин", ["Iurii Eltsin", "Yuriy Yelʹtsin", "Yurij El`cin", "Jurij Elcin", "Yuri Yeltsin"]),
    ("подъезд", ["podieezd", "podʺyezd", "pod``ezd", "podezd", "pod'ezd"]),
    ("сепаратизм", ["separatizm", "SEPARATIZM"]),
    ("Хабаровск", ["Khabarovsk", "Xabarovsk", "Habarovsk", "Chabarovsk"]),
    ("жительница", ["zhitelnitsa", "zhitel'nica", "žitelʹnica", "jitelnica", "zhitel`nicza"]),
]


@pytest.mark.parametrize(("term", "spellings"), RUSSIAN)
def test_russian_terms_match_the_common_transliterations(term: str, spellings: list[str]) -> None:
    matcher = latin(term)
    for spelling in spellings:
        assert hit(matcher, f"Reported: {spelling}, today.") == term, spelling


def test_kazakh_terms_get_kazakh_rules_and_other_terms_both() -> None:
    assert hit(latin("шаһарда"), "shaharda") == "шаһарда"
    assert hit(latin("шаһарда"), "wahar da") is None
    assert hit(latin("шаһарда"), "waharda") is None  # w for ш is Russian chat translit, and һ makes it Kazakh
    assert hit(latin("шахтада"), "wahtada") == "шахтада"  # no Kazakh letter: Russian rules apply too
    assert hit(latin("шахтада"), "şahtada") == "шахтада"  # ... and the Kazakh ones
    assert hit(latin("Халық кеңесі"), "Narodnyi sovet") is None


def test_prefixes_phrases_case_and_apostrophes_work_as_in_cyrillic() -> None:
    matcher = latin("Халық кеңес*", "Народн* совет*")
    for text in ["HALYQ KEÑESI", "Halyk kenesinin", "Xalyq keñesi", "Halyq ken’esi", "halyq\n— keñesınıñ",
                 "Narodnogo Soveta", "narodnyi sovetnik"]:  # fmt: skip
        assert matcher.match("", text), text
    for text in ["Halyqkenesi", "kenesi halyq", "halyq", "Narodnyi", "antinarodnyi sovet"]:
        assert not matcher.match("", text), text
    assert not matcher.match("Halyq", "kenesi")  # no phrase across the title and the text
    whole = latin("Халық кеңесі")
    assert whole.match("", "Halyq kenesi") and not whole.match("", "Halyq kenesinin")


def test_all_and_none_terms_are_transliterated_too() -> None:
    matcher = latin("separatism", all=["Қазақстан"], none=["футбол клубы"])
    assert hit(matcher, "separatism in Qazaqstan") == "separatism"
    assert hit(matcher, "separatism in Kazakhstan") is None  # "Kazakhstan" is the English name, not a rendering
    assert hit(matcher, "separatism in Qazaqstan: futbol kluby") is None


def test_the_reported_term_is_the_configured_one_and_the_earliest() -> None:
    matcher = latin("Халық кеңесі", "сепаратизм*")
    assert matcher.match("", "separatizm and Халық кеңесі") == (Match("t", "сепаратизм*"),)
    assert matcher.match("Halyq kenesi", "сепаратизм") == (Match("t", "Халық кеңесі"),)


def test_short_terms_are_not_transliterated() -> None:
    """Fewer than MIN_LETTERS letters: a Latin rendering is too often another word (decoys)."""
    for term, english in [("Орал", "an oral hearing"), ("марш", "a salt marsh"), ("нет", "the net"),
                          ("мир", "Mir space station"), ("тіл", "til dawn")]:  # fmt: skip
        assert hit(latin(term), english) is None, term
        assert hit(latin(term), term.upper()) == term  # the Cyrillic term itself still matches


def test_transliterate_off_keeps_latin_text_unmatched() -> None:
    off = Matcher([TopicSpec("t", ("Халық кеңес*",))])
    assert not off.match("", "Halyq kenesi") and off.match("", "Халық кеңесі")


def test_keys_are_bounded_and_patterns_compile_for_every_letter() -> None:
    rng = random.Random(5)
    letters = "абвгғдеёжзийкқлмнңоөпрстуұүфхһцчшщъыіьэюя"
    for _ in range(300):
        word = rng.choice("абвгдзклмнопрст") + "".join(rng.choice(letters) for _ in range(rng.randint(4, 14)))
        keys = translit.first_keys(word, [word])
        assert 0 < len(keys) <= translit.MAX_KEYS
        assert all(len(key) <= translit.KEY_LENGTH for key in keys)
        for spelling in translit.spellings(word, [word], 20):  # every enumerated spelling matches
            assert hit(latin(word), f"({spelling})") == word, (word, spelling)


CYRILLIC_WORDS = ["сепаратистов", "Халық", "кеңесі", "народного", "совета", "шекара", "тәуелсіздік", "және", "и"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(CYRILLIC_WORDS), max_size=12), st.sampled_from([" ", ", ", "\n", " — "]))
def test_on_text_without_latin_letters_transliteration_changes_nothing(words: list[str], sep: str) -> None:
    terms = ("сепаратист*", "Халық кеңес*", "Народн* совет*", "тәуелсіздік")
    on = Matcher([TopicSpec("t", terms, transliterate=True)])
    off = Matcher([TopicSpec("t", terms)])
    text = sep.join(words)
    assert on.match("", text) == off.match("", text)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["Halyq keñesi", "narodnyy sovet", "separatizm", "bölınuşılık"]), st.randoms())
def test_latin_matching_is_invariant_to_case(text: str, rng: random.Random) -> None:
    matcher = latin("Халық кеңес*", "Народн* совет*", "сепаратизм", "бөлінушілік*")
    mixed = "".join(c.upper() if rng.random() < 0.5 else c for c in text)
    assert matcher.match("", mixed) == matcher.match("", text) != ()


# ------------------------------------------------------------------------------------- FTS5 query


def fts(texts: list[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE VIRTUAL TABLE f USING fts5(text, tokenize='{FTS_TOKENIZER}')")
    conn.executemany("INSERT INTO f (text) VALUES (?)", [(t,) for t in texts])
    return conn


def found(conn: sqlite3.Connection, query: str) -> set[str]:
    return {row[0] for row in conn.execute("SELECT text FROM f WHERE f MATCH ?", (query,))}


def test_fts_query_ors_the_latin_spellings_of_words_prefixes_and_phrases() -> None:
    texts = ["Halyq keñesiniñ otyrysy", "Xalyq kenesi", "Halyq ken'esi", "narodnyy sovet", "Народный совет",
             "separatistter", "separatizm", "The council met"]  # fmt: skip
    conn = fts(texts)
    assert found(conn, translit.fts_query('"Халық кеңес"*')) == set(texts[:3])
    assert found(conn, translit.fts_query('"Народный совет"')) == {"narodnyy sovet", "Народный совет"}
    assert found(conn, translit.fts_query("сепаратист*")) == {"separatistter"}
    assert found(conn, translit.fts_query("сепаратизм OR council")) == {"separatizm", "The council met"}
    assert found(conn, translit.fts_query("text:сепаратизм")) == {"separatizm"}
    assert found(conn, translit.fts_query('"Халық кеңес"* NOT otyrysy')) == {"Xalyq kenesi", "Halyq ken'esi"}
    # two words: FTS5 reads "a b" as a AND b, but a group needs the AND spelled out
    assert found(conn, translit.fts_query("Халық кеңес*")) == set(texts[:3])
    assert found(conn, translit.fts_query("otyrysy Халық")) == {texts[0]}


def test_fts_query_leaves_what_it_cannot_expand() -> None:
    for query in ['Халық "unbalanced', "council", "мир", "NEAR(a b, 5)"]:
        assert translit.fts_query(query) == query
    assert translit.fts_query("(сепаратизм)").count("separatizm") == 1


def test_fts_query_is_bounded() -> None:
    query = translit.fts_query('"бөлінушілік шаһарының қазысының"*')
    assert query.count(" OR ") <= translit.MAX_FTS_VARIANTS


def test_search_transliterate_finds_latin_posts(tmp_path: Path, raw_server: RawServer) -> None:
    items = "".join(
        f"<item><guid>p{i}</guid><title>{title}</title><description>{text}</description>"
        f"<pubDate>Mon, 02 Jun 2025 0{i}:00:00 GMT</pubDate></item>"
        for i, (title, text) in enumerate(
            [("Halyq keñesi jinaldy", "Petropavl"), ("Народный совет", "Петропавловск"), ("Weather", "Sunny")]
        )
    )
    feed = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>{items}</channel></rss>'
    raw_server.routes["/rss"] = respond(200, feed.encode(), {"Content-Type": "application/rss+xml"})
    config = write_config(
        tmp_path,
        f"""
        store: monitor.db
        topics:
          council: {{any: ["Халық кеңес*", "Народн* совет*"], transliterate: true}}
        sources:
          - {{name: news, type: feed, url: "{raw_server.url("/rss")}", robots: false}}
        """,
    )
    assert run_monitor(config, "poll").returncode == 0

    def search(*args: str) -> list[dict[str, object]]:
        result = run_monitor(config, "search", *args, "--format", "json")
        assert result.returncode == 0, result.stderr
        rows: list[dict[str, object]] = json.loads(result.stdout)
        return rows

    assert [r["title"] for r in search("Халық кеңес*")] == []
    assert [r["title"] for r in search("Халық кеңес*", "--transliterate")] == ["Halyq keñesi jinaldy"]
    assert {r["title"] for r in search("--topic", "council")} == {"Halyq keñesi jinaldy", "Народный совет"}


def test_fold_keeps_the_letters_the_schemes_use() -> None:
    """The renderings are compared with folded text: fold must not merge or drop these letters."""
    for letter in "äğıñŋöşūüáǵńóúýčšžʹʺ":
        assert fold(letter) == letter
    assert fold("İ") == "i" and fold("Ş") == "ş" and fold("Ñ") == "ñ"
