"""monitor.match: term syntax, folding, topic semantics, and agreement with a plain reference matcher."""

from __future__ import annotations

import functools
import random
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitor.exceptions import ConfigError
from monitor.match import Matcher, fold, term_problem
from monitor.types import Match, TopicSpec


def topic(name: str, *any_terms: str, all: Sequence[str] = (), none: Sequence[str] = ()) -> TopicSpec:
    return TopicSpec(name=name, any=tuple(any_terms), all=tuple(all), none=tuple(none))


def matched(terms: Sequence[str], title: str, text: str = "") -> bool:
    return bool(Matcher([topic("t", *terms)]).match(title, text))


DESIGN_TOPICS = [
    topic("separatism", "separatism", "separatist*", "сепаратизм*", "сепаратист*"),
    topic("peoples-council", "People's Council", "Народный совет*", "Халық кеңесі", none=["football"]),
]


# --- A plain reference: the documented word definition, written directly --------------------------

_MARKS = "".join(chr(cp) for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("M"))
_ALNUM = r"[^\W_]"  # str.isalnum(), as the re module defines \w for str patterns, minus "_"
_REF_WORD = re.compile(rf"{_ALNUM}(?:{_ALNUM}|[{re.escape(_MARKS)}]|'(?={_ALNUM}))*")


def ref_words(text: str) -> list[tuple[int, str]]:
    """(start, word) for each word of folded text: maximal runs per the module docstring."""
    return [(m.start(), m.group()) for m in _REF_WORD.finditer(text)]


@functools.cache
def ref_term(term: str) -> list[tuple[str, bool]]:
    folded = fold(term)
    return [(m.group(), folded[m.end() : m.end() + 1] == "*") for m in _REF_WORD.finditer(folded)]


def ref_first(term: list[tuple[str, bool]], words: list[tuple[int, str]]) -> int | None:
    """Start of the term's first match among consecutive words, or None."""
    for index in range(len(words) - len(term) + 1):
        for k, (literal, prefix) in enumerate(term):
            word = words[index + k][1]
            if not (word.startswith(literal) if prefix else word == literal):
                break
        else:
            return words[index][0]
    return None


def reference_match(topics: Sequence[TopicSpec], title: str, text: str) -> tuple[Match, ...]:
    parts = [ref_words(fold(title)), ref_words(fold(text))]  # separately: no phrase spans them

    @functools.cache
    def first(term: str) -> tuple[int, int] | None:
        parsed = ref_term(term)
        for part, words in enumerate(parts):
            start = ref_first(parsed, words)
            if start is not None:
                return (part, start)
        return None

    result = []
    for spec in topics:
        if any(first(t) is not None for t in spec.none) or not all(first(t) is not None for t in spec.all):
            continue
        hits = [(where, order, term) for order, term in enumerate(spec.any) if (where := first(term))]
        if hits:
            result.append(Match(spec.name, min(hits)[2]))
    return tuple(result)


# --- Seeded multilingual vocabulary, terms and posts -------------------------------------------------

WORDS = {
    "en": "separatism separatist separatists separate council councils people's peoples people assembly "
    "referendum autonomy independence protest rally o'brien don't covid19 2024 region governor border "
    "minister police court election football the of and in",
    "ru": "сепаратизм сепаратисты сепаратистский сепарация народный народного совет совета советник ёлка "
    "елка всё все объём область автономия референдум протест митинг граница губернатор суд выборы "
    "футбол и в на по",
    "kk": "халық халықтың кеңесі кеңес кеңестің сепаратизм қазақстан өңір тәуелсіздік шекара сот сайлау "
    "үкімет ұлттық әкім жиын және мен бұл",
}
VOCAB = sorted({w for words in WORDS.values() for w in words.split()})
SEPARATORS = [" ", " ", " ", ", ", ". ", "-", " - ", " — ", "\n", "\n\n", "«", "» ", "'", "’", " '", "' ",
              "_", "\u00a0", "\u00ad", "/", " (", ") ", "!? ", "¨", "...", "\t", "#", "@"]  # fmt: skip


def variant(word: str, rng: random.Random) -> str:
    """The word as a post might spell it: case, apostrophe variant, ё/е, decomposed, or a decoy."""
    roll = rng.random()
    if roll < 0.15:
        word = word.upper()
    elif roll < 0.3:
        word = word.title()
    elif roll < 0.35:
        word = "".join(c.upper() if rng.random() < 0.5 else c for c in word)
    if rng.random() < 0.1:
        word = word.replace("'", rng.choice("’ʼ`‘"))
    if rng.random() < 0.1:
        word = word.replace("е", "ё") if rng.random() < 0.5 else word.replace("ё", "е")
    if rng.random() < 0.1:
        word = unicodedata.normalize("NFD", word)
    if rng.random() < 0.1:  # decoys: a longer word around the term's word
        word = rng.choice(["anti", "не", "s", "x"]) + word if rng.random() < 0.5 else word + rng.choice("sаы1")
    return word


def make_text(rng: random.Random, words: int) -> str:
    parts = []
    for _ in range(words):
        parts.append(variant(rng.choice(VOCAB), rng))
        parts.append(rng.choice(SEPARATORS))
    return "".join(parts)


def make_terms(rng: random.Random, count: int) -> list[str]:
    syllables = ["ка", "ли", "се", "па", "ра", "ти", "за", "на", "ба", "қа", "ңы", "ұл", "ар", "ен", "ist",
                 "ion", "pro", "con", "tra", "de"]  # fmt: skip
    pool = VOCAB + ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(300)]
    terms: list[str] = []
    while len(terms) < count:
        roll = rng.random()
        word = rng.choice(pool)
        if roll < 0.35:
            terms.append(rng.choice([word, word.title(), word.upper()]))
        elif roll < 0.6 and len(word) >= 3:
            terms.append(word[: rng.randint(2, len(word))].rstrip("'").ljust(2, "x") + "*")
        else:
            words = [rng.choice(VOCAB) for _ in range(rng.randint(2, 3))]
            words = [w[: max(2, len(w) - 2)] + "*" if rng.random() < 0.3 and len(w) > 3 else w for w in words]
            terms.append(rng.choice([" ", "  ", " - ", "\n"]).join(words))
    return terms


def make_topics(rng: random.Random, terms: list[str]) -> list[TopicSpec]:
    """One topic per term (so every term's verdict shows), then topics of ten with `all` / `none`."""
    topics = [topic(f"term-{index}", term) for index, term in enumerate(terms)]
    for index in range(0, len(terms), 10):
        extra = rng.sample(VOCAB, 2)
        topics.append(
            topic(
                f"topic-{index // 10}",
                *terms[index : index + 10],
                all=[extra[0]] if index % 30 == 10 else [],
                none=[extra[1]] if index % 30 == 20 else [],
            )
        )
    return topics


RNG = random.Random(20240601)
MANY_TERMS = make_terms(RNG, 1200)
MANY_TOPICS = make_topics(RNG, MANY_TERMS)
MANY_MATCHER = Matcher(MANY_TOPICS)


def test_agrees_with_reference_on_1200_terms_and_seeded_posts() -> None:
    rng = random.Random(7)
    posts = [(make_text(rng, rng.randint(0, 8)), make_text(rng, rng.randint(0, 60))) for _ in range(300)]
    fast = MANY_MATCHER.match_many(posts)
    slow = [reference_match(MANY_TOPICS, title, text) for title, text in posts]
    assert fast == slow
    verdicts = [{m.topic for m in found if m.topic.startswith("term-")} for found in fast]
    assert 10 < sum(len(v) for v in verdicts) / len(posts) < 300  # each post matches some terms, not all
    assert [MANY_MATCHER.match(title, text) for title, text in posts] == fast


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(VOCAB), max_size=30),
    st.lists(st.sampled_from(SEPARATORS), min_size=1),
    st.randoms(use_true_random=False),
)
def test_agrees_with_reference_on_generated_posts(words: list[str], separators: list[str], rng: random.Random) -> None:
    text = "".join(variant(word, rng) + separators[i % len(separators)] for i, word in enumerate(words))
    cut = rng.randint(0, len(text))
    title, body = text[:cut], text[cut:]
    assert MANY_MATCHER.match(title, body) == reference_match(MANY_TOPICS, title, body)


# --- Properties: case, apostrophes, surroundings, decoys ----------------------------------------------

SAMPLE_TERMS = [
    "separatism", "separatist*", "сепаратизм*", "сепаратист*", "People's Council", "Народный совет*",
    "Халық кеңесі", "народн* совет*", "O'Brien", "covid19", "2024", "Қазақстан", "өңір", "ұлттық кеңес*",
    "straße", "ёлка", "объём", "don't", "Ғылым", "үкімет",
]  # fmt: skip


def render(term: str, gaps: Sequence[str] = (" ",), suffix: str = "ами") -> str:
    """A text the term matches: its words joined by `gaps`, each `word*` completed by `suffix`."""
    words = term.replace("*", suffix).split()
    return "".join(word + (gaps[i % len(gaps)] if i < len(words) - 1 else "") for i, word in enumerate(words))


SAMPLE_TOPICS = [topic(f"t{index}", term) for index, term in enumerate(SAMPLE_TERMS)]
SAMPLE_MATCHER = Matcher(SAMPLE_TOPICS)
PIECES = st.one_of(
    st.sampled_from([render(term) for term in SAMPLE_TERMS] + VOCAB),
    st.text(max_size=4),
    st.text(st.characters(categories=("M", "P", "Z", "Lm", "Sk")), max_size=3),
    st.sampled_from(["'", "’", "´", "ʼ", "\u0301", "\u0308", "\u00ad", "ß", "İ", "ё", "Ё", "\x00", "*"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=25), st.lists(PIECES, max_size=5))
def test_agrees_with_reference_on_arbitrary_text(text: list[str], title: list[str]) -> None:
    assert SAMPLE_MATCHER.match("".join(title), "".join(text)) == reference_match(
        SAMPLE_TOPICS, "".join(title), "".join(text)
    )


CASES: list[Callable[[str], str]] = [str.upper, str.lower, str.title, str.swapcase, str.capitalize]


@given(st.sampled_from(SAMPLE_TERMS), st.sampled_from(CASES), st.sampled_from(CASES))
def test_case_variants_match_alike(term: str, term_case: Callable[[str], str], text_case: Callable[[str], str]) -> None:
    assert Matcher([topic("t", term_case(term))]).match("", text_case(render(term))) == (Match("t", term_case(term)),)


@given(st.sampled_from(SAMPLE_TERMS), st.randoms(use_true_random=False))
def test_random_per_letter_case_matches(term: str, rng: random.Random) -> None:
    text = "".join(c.upper() if rng.random() < 0.5 else c for c in render(term))
    assert matched([term], text)


@given(st.sampled_from(["’", "‘", "ʼ", "`", "'", "´", "′", "‛"]), st.sampled_from(["’", "ʼ", "`", "'"]))
def test_apostrophe_variants_match_alike(in_term: str, in_text: str) -> None:
    assert matched([f"People{in_term}s Council"], f"PEOPLE{in_text}S  council")
    assert matched([f"o{in_term}brien"], f"Mr O{in_text}Brien said")


SEPARATOR_CHARS = st.characters(categories=("P", "Z", "S", "Cc"), exclude_characters="\x00")


def is_separator_run(run: str) -> bool:
    """A run that separates words wherever it stands: folds to something, no letters, no marks, and
    not to a lone apostrophe (which would join the words around it)."""
    folded = fold(run)
    return bool(folded) and folded != "'" and not any(c.isalnum() or unicodedata.category(c)[0] == "M" for c in folded)


@settings(max_examples=300)
@given(
    st.sampled_from(SAMPLE_TERMS),
    st.text(SEPARATOR_CHARS, max_size=6),
    st.text(SEPARATOR_CHARS, max_size=6),
    st.lists(st.text(SEPARATOR_CHARS, min_size=1, max_size=6), min_size=1, max_size=3),
)
def test_term_surrounded_by_any_punctuation_still_matches(term: str, before: str, after: str, gaps: list[str]) -> None:
    assume(all(is_separator_run(gap) for gap in gaps))
    assume(not after or is_separator_run(after))
    assume(not before or is_separator_run(before))
    assert matched([term], "", before + render(term, gaps) + after)
    assert matched([term], before + render(term, gaps) + after, "")


@given(st.sampled_from(SAMPLE_TERMS), st.text(st.characters(categories=("L", "Nd")), min_size=1, max_size=3))
def test_letters_glued_before_a_term_make_another_word(term: str, letters: str) -> None:
    assume(fold(letters).isalnum())
    assert not matched([term], letters + render(term))


@given(
    st.sampled_from([t for t in SAMPLE_TERMS if not t.endswith("*")]),
    st.text(st.characters(categories=("L", "Nd")), min_size=1, max_size=3),
)
def test_letters_glued_after_a_whole_word_make_another_word(term: str, letters: str) -> None:
    assume(fold(letters)[:1].isalnum())
    assert not matched([term], render(term) + letters)
    assert not matched([term], render(term) + "'" + letters)  # "Council's" is another word too


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("separatis*", "Separate ways"),
        ("сепаратизм*", "сепарация"),
        ("сепаратист*", "сепарация"),
        ("council", "Councils"),
        ("People's Council", "People's Councils"),
        ("People's Council", "Peoples Council"),
        ("People's Council", "people s council"),
        ("People's Council", "'People' Council's"),
        ("separatism", "antiseparatism"),
        ("Народный совет", "Народного совета"),
        ("Народный совет", "Народный совета"),
        ("народн* совет*", "народный, не совет"),
        ("Халық кеңесі", "Халық кеңесінің"),
        ("2024", "20245"),
        ("covid19", "covid"),
        ("ёлка", "ёлки"),
    ],
)
def test_decoys_do_not_match(term: str, text: str) -> None:
    assert not matched([term], text)


# --- Units: the contract's examples and details -------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "PEOPLE’S  council",
        "people's\ncouncil",
        "People's — Council",
        "«People's» (Council)",
        "people\u02bcs\r\n\tcouncil",
        "the 'People's Council'",
        "...people's...council...",
    ],
)
def test_phrase_matches_across_spaces_punctuation_and_line_breaks(text: str) -> None:
    assert Matcher(DESIGN_TOPICS).match("", text) == (Match("peoples-council", "People's Council"),)


def test_phrase_does_not_span_title_into_text() -> None:
    matcher = Matcher(DESIGN_TOPICS)
    assert matcher.match("People's", "Council") == ()
    assert matcher.match("Народный", "совет") == ()
    assert matcher.match("People's Council", "") != ()
    assert matcher.match("", "People's Council") != ()
    assert matcher.match("Separatism", "") == (Match("separatism", "separatism"),)
    assert matcher.match("People's\x00", "\x00Council") == ()
    assert matcher.match("People's\x00Council", "") != ()  # a NUL in a post is punctuation
    assert matcher.match("", "People's\x00Council") != ()


def test_wildcards_inside_phrases() -> None:
    terms = ["народн* совет*"]
    for text in ["Народного совета", "народный совет", "НАРОДНЫЕ СОВЕТЫ", "народного-советника"]:
        assert matched(terms, text), text
    for text in ["народ совета", "народный", "совет народный", "народные депутаты совета"]:
        assert not matched(terms, text), text
    assert matched(["Народный совет*"], "Народный совета")
    assert not matched(["Народный совет*"], "Народного совета")


def test_hyphen_is_punctuation() -> None:
    assert matched(["сепаратист*"], "про-сепаратистский")
    assert matched(["сепаратист*"], "сепаратисты")
    assert matched(["про сепаратистский"], "про-сепаратистский")
    assert matched(["pro-separatist"], "pro separatist")
    assert matched(["separatism"], "#separatism_news")  # underscores and symbols separate words too


@pytest.mark.parametrize("text", ["Халық кеңесі", "ХАЛЫҚ КЕҢЕСІ", "халық\u00a0кеңесі", "Халық-Кеңесі"])
def test_kazakh(text: str) -> None:
    assert Matcher(DESIGN_TOPICS).match(text, "") == (Match("peoples-council", "Халық кеңесі"),)


def test_kazakh_letters_are_letters() -> None:
    assert matched(["ұлттық кеңес*"], "ҰЛТТЫҚ КЕҢЕСТІҢ отырысы")
    assert not matched(["кеңес"], "Кеңесі")
    assert matched(["өңір"], "Өңір: жаңалықтар")
    assert not matched(["өңір"], "өңірлер")


def test_digits_are_word_characters() -> None:
    assert matched(["2024"], "в 2024 году")
    assert matched(["covid19"], "COVID19!")
    assert matched(["covid*"], "covid-19")
    assert matched(["covid 19"], "covid-19")
    assert not matched(["2024"], "2024th")
    assert matched(["20*"], "2024th")
    assert matched(["2024"], "²⁰²⁴")  # superscript digits are digits after NFKC


def test_decomposed_input_matches() -> None:
    decomposed = unicodedata.normalize("NFD", "Народный совет, Халық кеңесі, сепаратизм, йод")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    assert matched(["народный совет"], decomposed)
    assert matched(["Халық кеңесі"], decomposed)
    assert matched(["йод"], decomposed)
    assert matched([unicodedata.normalize("NFD", "йод")], "ЙОД")
    assert not matched(["иод"], "йод")


def test_yo_and_ye_match_each_other() -> None:
    assert matched(["ёлка"], "ЕЛКА")
    assert matched(["елка"], "Ёлка")
    assert matched(["объём*"], "объемы")
    assert matched(["всё"], "все")


def test_stress_marks_soft_hyphens_and_case_folding() -> None:
    assert matched(["сепаратизм"], "сепарати\u0301зм")
    assert matched(["сепаратизм"], "сепара\u00adтизм")
    assert matched(["straße"], "STRASSE")
    assert matched(["STRASSE"], "straße")
    assert matched(["İstanbul"], "istanbul")


def test_combining_marks_belong_to_the_word_they_follow() -> None:
    assert not matched(["council"], "council\u0308")  # a mark after a word is part of it
    assert matched(["council"], "\u0308council")  # a mark after no word is punctuation
    assert matched(["council\u0308"], "COUNCIL\u0308")


def test_all_and_none() -> None:
    spec = topic("pc", "People's Council", "Народный совет*", all=["Kazakhstan*"], none=["football", "футбол*"])
    matcher = Matcher([spec])
    assert matcher.match("People's Council", "in Kazakhstan") == (Match("pc", "People's Council"),)
    assert matcher.match("People's Council", "") == ()  # the `all` term is missing
    assert matcher.match("People's Council", "Kazakhstan football") == ()  # vetoed
    assert matcher.match("Kazakhstan's", "Народный совет, футболисты") == ()  # vetoed by a prefix
    assert matcher.match("football", "Kazakhstan") == ()  # `all` and `none` alone do not match


def test_reported_term_is_the_earliest_in_the_post_then_the_first_listed() -> None:
    matcher = Matcher([topic("t", "separatism", "сепаратизм*", "separat*")])
    assert matcher.match("", "сепаратизм and separatism") == (Match("t", "сепаратизм*"),)
    assert matcher.match("separatism", "сепаратизм") == (Match("t", "separatism"),)
    assert matcher.match("", "separatism") == (Match("t", "separatism"),)  # tie: listed first
    assert matcher.match("", "separation, separatism") == (Match("t", "separat*"),)


def test_topics_come_in_config_order_and_share_terms() -> None:
    matcher = Matcher([topic("b", "council"), topic("a", "Council", "people"), topic("c", "assembly")])
    assert matcher.match("people", "COUNCIL") == (Match("b", "council"), Match("a", "people"))
    assert matcher.match("", "assembly") == (Match("c", "assembly"),)


def test_no_topics_and_empty_posts() -> None:
    assert Matcher([]).match("People's Council", "") == ()
    assert Matcher(DESIGN_TOPICS).match("", "") == ()
    assert Matcher([topic("t")]).match("anything", "") == ()
    assert Matcher(DESIGN_TOPICS).match_many([]) == []


def test_separator_keys_in_the_automaton_never_report() -> None:
    assert Matcher(DESIGN_TOPICS).match(" \x01, \x01", ". \x01\n\x01") == ()


@pytest.mark.parametrize(
    ("term", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("*", "alone"),
        ("  ** ", "alone"),
        ("--", "no letters"),
        ("«»", "no letters"),
        ("a*", "too short"),
        ("я*", "too short"),
        ("big a* deal", "too short"),
        ("se*p", "must end a word"),
        ("*separatism", "must end a word"),
        ("separatism**", "must end a word"),
        ("people'*", "must end a word"),
        ("народн* * совет", "must end a word"),
    ],
)
def test_term_problem(term: str, problem: str) -> None:
    found = term_problem(term)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    "term",
    ["separatism", "separatist*", "ab*", "People's Council", "Народн* совет*", "Халық кеңесі", "5g", "ß*"],
)
def test_valid_terms(term: str) -> None:
    assert term_problem(term) is None


def test_invalid_terms_raise_config_error_with_every_location() -> None:
    with pytest.raises(ConfigError) as caught:
        Matcher([topic("x", "ok", "a*", all=["*"]), topic("y", "fine", none=[""])])
    assert caught.value.problems == [
        "topics.x.any[1]: prefix 'a*' is too short: write at least 2 letters before '*'",
        "topics.x.all[0]: '*' alone is not a term: put it at the end of a word, as in 'separatist*'",
        "topics.y.none[0]: empty term",
    ]


@given(st.text(st.characters(categories=("L", "M", "N", "P", "Z")), max_size=20))
def test_fold_is_stable(text: str) -> None:
    once = fold(text)
    assert fold(once) == once
    assert fold(text.upper()) == fold(text.lower()) or not text.isascii()
