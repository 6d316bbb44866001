"""monitor.dedupe: compared text, MinHash signatures, LSH band keys, similarity."""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import dedupe
from monitor.dedupe import BANDS, NUM_PERM, THRESHOLD, band_keys, dedupe_text, signature, similarity

EN = (
    "Officials in the regional capital confirmed on Tuesday that the People's Council will meet next week "
    "to discuss a draft law on local self-government. The draft, published on the council's website, would "
    "give district assemblies control over their own budgets and allow residents to recall elected members. "
    "Opposition deputies said the proposal did not go far enough, while the governor's office warned that "
    "it could slow down infrastructure projects already approved for the coming year. A public hearing is "
    "planned for the end of the month in the city library."
)
RU = (
    "В среду в областном центре прошло заседание Народного совета, на котором обсуждали проект закона о "
    "местном самоуправлении. Документ, опубликованный на сайте совета, предлагает передать районным "
    "собраниям контроль над собственными бюджетами и разрешить жителям отзывать избранных депутатов. "
    "Представители оппозиции заявили, что этого недостаточно, а в администрации губернатора предупредили, "
    "что реформа может затормозить уже одобренные строительные проекты. Общественные слушания назначены на "
    "конец месяца, сообщили в пресс-службе ёлочного фестиваля."
)
KK = (
    "Сәрсенбі күні облыс орталығында Халық кеңесінің отырысы өтіп, жергілікті өзін-өзі басқару туралы заң "
    "жобасы талқыланды. Кеңестің сайтында жарияланған құжат аудандық жиналыстарға өз бюджеттерін басқаруға "
    "және тұрғындарға сайланған депутаттарды кері шақыруға мүмкіндік береді. Оппозиция өкілдері бұл "
    "жеткіліксіз екенін айтты, ал әкімдік құрылыс жобалары баяулауы мүмкін екенін ескертті."
)
OTHER = (
    "The national football team lost two to one in a friendly match against its neighbours on Saturday "
    "evening. The coach blamed the wet pitch and a late penalty, and said several young players had shown "
    "promise. Tickets for the next home game go on sale on Monday morning at the stadium and online."
)


def _clusters(a: bytes, b: bytes) -> bool:
    """The store's rule for two signatures: a shared band key and similarity at or above THRESHOLD."""
    return bool(set(band_keys(a)) & set(band_keys(b))) and similarity(a, b) >= THRESHOLD


# --- dedupe_text ----------------------------------------------------------------------------------


def test_dedupe_text_folds_case_width_punctuation_and_yo() -> None:
    assert dedupe_text("", "«Ёлка» — ЁЛКА!  Ｗｉｄｅ, ﬁne… People’s_council 42") == (
        "елка елка wide fine people s council 42"
    )


def test_dedupe_text_drops_urls_and_trailers() -> None:
    body = "One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " * 2
    assert dedupe_text("", body + "see https://example.org/x?y=1 and www.example.org/z") == dedupe_text(
        "", body + "see and"
    )
    for trailer in ["\nSource: Reuters", "\nИсточник: ТАСС", "\nДереккөз: Kazinform", "\nvia AP",
                    " Read more »", " Читать далее…", " Толығырақ", "\n\nThe post Hello appeared first on Blog.",
                    "\nФото: пресс-служба\nRead more"]:  # fmt: skip
        assert dedupe_text("", body + trailer) == dedupe_text("", body), trailer


def test_credits_count_only_as_lines_of_their_own() -> None:
    text = "Source: the ministry said twenty people were detained in the capital on Sunday evening"
    assert dedupe_text("", text).startswith("source the ministry")
    assert dedupe_text("", "x\nSources said the talks would resume in the capital next week").endswith("next week")


def test_the_title_counts_only_for_short_bodies() -> None:
    assert "headline" not in dedupe_text("Headline", EN)
    assert dedupe_text("Headline", "a short body").split() == ["headline", "a", "short", "body"]


# --- signature ------------------------------------------------------------------------------------


def test_signature_layout() -> None:
    sig = signature("", EN)
    assert len(sig) == 1 + 4 * NUM_PERM
    assert sig[0] == dedupe.FORMAT
    assert len(band_keys(sig)) == BANDS


def test_signatures_are_stable_across_releases() -> None:
    # stored signatures are compared with new ones: a change here needs a new dedupe.FORMAT
    digests = [hashlib.sha256(signature("", t)).hexdigest()[:16] for t in (EN, RU, KK)]
    assert digests == ["942cd6206677ec42", "cf11ee167ff7a80a", "0adfedba9ad922ac"]


def test_signature_is_the_same_in_a_process_with_another_hash_seed() -> None:
    code = (
        "import sys; from monitor.dedupe import signature, band_keys\n"
        "for t in sys.stdin.read().split('\\x1e'):\n"
        "    s = signature('t', t); print(s.hex(), band_keys(s))\n"
    )
    texts = [EN, RU, KK, OTHER, "emoji 🔥 and 𝐁old " * 5]
    here = "".join(f"{signature('t', t).hex()} {band_keys(signature('t', t))}\n" for t in texts)
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], input="\x1e".join(texts), env=env, check=True,
                             capture_output=True, text=True, timeout=60).stdout  # fmt: skip
        assert out == here


def test_short_texts_have_no_signature() -> None:
    assert signature("", "") == b""
    assert signature("Seven", "distinct words in this one") == b""
    assert signature("", "same same same same same same same same same same") == b""
    assert signature("", "one two three four five six seven eight") != b""
    assert band_keys(b"") == ()
    assert similarity(b"", b"") == 0.0
    assert similarity(signature("", EN), b"") == 0.0


def test_foreign_signatures_do_not_compare() -> None:
    sig = signature("", EN)
    other_format = bytes([dedupe.FORMAT + 1]) + sig[1:]
    assert similarity(sig, other_format) == 0.0
    assert similarity(sig, sig[:-4]) == 0.0
    with pytest.raises(ValueError, match="signature"):
        band_keys(other_format)
    with pytest.raises(ValueError, match="signature"):
        band_keys(sig + b"\0")


def test_band_keys_are_signed_64_bit_and_mix_in_the_band() -> None:
    flat = bytes([dedupe.FORMAT]) + bytes(4 * NUM_PERM)  # every band has the same rows
    keys = band_keys(flat)
    assert len(set(keys)) == BANDS
    assert all(-(2**63) <= k < 2**63 for k in keys + band_keys(signature("", RU)))


# --- properties -----------------------------------------------------------------------------------

_VOCAB = (
    "people's", "council", "separatism", "народный", "совет", "сепаратизм", "халық", "кеңесі", "қазақстан",
    "заң", "жоба", "president", "region", "police", "2024", "ёлка", "Ёж", "protest", "court", "әкімдік",
    "ұлттық", "шекара",
)  # fmt: skip
_TEXTS = st.lists(st.sampled_from(_VOCAB), min_size=0, max_size=40).map(" ".join)


@given(st.text(max_size=60), st.text(max_size=300) | _TEXTS)
def test_signature_is_deterministic_and_self_similar(title: str, text: str) -> None:
    sig = signature(title, text)
    assert sig == signature(title, text)
    # what is hashed is exactly the word set of dedupe_text (two code paths, one rule)
    assert len(dedupe._word_set(title, text)) == len(set(dedupe_text(title, text).split()))
    assert dedupe._word_sets([(title, text), ("", "")])[1][0] == len(set(dedupe_text(title, text).split()))
    assert band_keys(sig) == band_keys(signature(title, text))
    if sig:
        assert similarity(sig, sig) == 1.0
        assert len(band_keys(sig)) == BANDS
    else:
        assert len(set(dedupe_text(title, text).split())) < dedupe.MIN_WORDS


@given(_TEXTS, st.lists(st.sampled_from([" ", "  ", "\n", "\n\n", " — ", ", ", "\t", "! "]), min_size=40,
                        max_size=40), st.sampled_from([str.upper, str.lower, str.title, str]))  # fmt: skip
def test_signature_ignores_whitespace_punctuation_and_case(text: str, seps: list[str], case: object) -> None:
    respaced = "".join(w + s for w, s in zip(text.split(), seps, strict=False))
    assert signature("", case(respaced)) == signature("", text)  # type: ignore[operator]


@given(st.lists(st.tuples(st.text(max_size=40) | _TEXTS, st.text(max_size=200) | _TEXTS), max_size=12),
       st.integers(min_value=1, max_value=60))  # fmt: skip
def test_signatures_of_a_batch_are_those_of_each_post(posts: list[tuple[str, str]], batch_words: int) -> None:
    # a poll's posts are signed together, in groups of at most _BATCH_WORDS words: the same bytes as one by one
    # (two implementations: signature() sorts each post's words alone)
    alone = [signature(title, text) for title, text in posts]
    with patch.object(dedupe, "_BATCH_WORDS", batch_words):
        assert dedupe.signatures(posts) == alone


def test_signatures_of_posts_longer_than_a_run_of_the_tables() -> None:
    # texts are joined into runs of at most MAX_CHARS characters: a post that fills one is a run alone
    long = " ".join(f"w{i}" for i in range(dedupe.MAX_CHARS))  # cut to MAX_CHARS by the compared text
    posts = [("a title", EN), ("", long), ("short", "too few words"), ("", long[: dedupe.MAX_CHARS - 3]), ("", RU)]
    assert dedupe.signatures(posts) == [signature(t, x) for t, x in posts]
    assert dedupe.signatures(posts)[2] == b"" and all(dedupe.signatures(posts)[i] for i in (0, 1, 3, 4))


@given(st.text(max_size=200) | _TEXTS, st.text(max_size=200) | _TEXTS)
def test_similarity_is_symmetric_and_bounded(a: str, b: str) -> None:
    sa, sb = signature("", a), signature("", b)
    assert similarity(sa, sb) == similarity(sb, sa)
    assert 0.0 <= similarity(sa, sb) <= 1.0


# --- near duplicates ------------------------------------------------------------------------------


def _replace_words(text: str, every: int) -> str:
    return " ".join("заменено" if i % every == 0 else w for i, w in enumerate(text.split(), start=1))


@pytest.mark.parametrize("text", [EN, RU, KK], ids=["en", "ru", "kk"])
def test_syndicated_copies_cluster(text: str) -> None:
    original = signature("Council meets on reform", text)
    copies = {
        "re-spaced, upper-case": ("COUNCIL MEETS ON REFORM", "  " + text.upper().replace(" ", "\n ") + " "),
        "credit line": ("Council meets on reform", text + "\nSource: Kazinform"),
        "other headline": ("Reform: what the council decided", text),
        "read more": ("Council meets on reform", text + " Читать далее →"),
        "one word in 40 changed": ("Council meets on reform", _replace_words(text, 40)),
    }
    for name, (title, body) in copies.items():
        assert _clusters(original, signature(title, body)), name


def test_distinct_articles_do_not_cluster() -> None:
    sigs = [signature("", t) for t in (EN, RU, KK, OTHER)]
    for i, a in enumerate(sigs):
        for b in sigs[i + 1 :]:
            assert similarity(a, b) < 0.5
            assert not _clusters(a, b)


def test_heavily_edited_or_cut_copies_do_not_cluster() -> None:
    original = signature("", EN)
    assert not _clusters(original, signature("", _replace_words(EN, 4)))  # a quarter of the words
    assert not _clusters(original, signature("", " ".join(EN.split()[: len(EN.split()) // 2])))


def test_the_module_is_pure() -> None:
    source = Path(dedupe.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {
        "__future__", "collections.abc", "functools", "hashlib", "re", "unicodedata", "typing", "numpy", "numpy.typing"
    }  # fmt: skip
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not calls & {"hash", "open", "print"}  # builtin hash() is salted per process


def test_best_match_picks_what_a_loop_over_similarity_would() -> None:
    import random

    rng = random.Random(3)
    base = [f"w{rng.randrange(500)}" for _ in range(60)]
    sig = dedupe.signature("", " ".join(base))
    others = [dedupe.signature("", " ".join(base[: 60 - n] + [f"x{n}"] * n)) for n in (30, 3, 1, 1, 12)]
    others.insert(2, b"")  # no signature: never the match
    at, score = dedupe.best_match(sig, others)
    scores = [dedupe.similarity(sig, o) for o in others]
    assert score == max(scores) and at == scores.index(max(scores)) and others[at]
    assert dedupe.best_match(sig, []) == (-1, 0.0) and dedupe.best_match(sig, [b""]) == (-1, 0.0)
