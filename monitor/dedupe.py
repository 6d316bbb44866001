"""Near-duplicate detection: MinHash signatures of posts, LSH band keys, estimated Jaccard similarity.

Pure: does no I/O; takes text, returns bytes and numbers. Deterministic across processes, machines and
Python versions: no builtin ``hash()``, no random generator; the constants come from SHAKE-128 of a fixed
label and every byte is little-endian. A signature is 513 bytes: a `FORMAT` byte, then `NUM_PERM` uint32.

How the store uses it: it keeps each post's `signature` and one row per `band_keys` value. A new post's
candidates are the posts sharing any band key; it joins the cluster of the candidate with the highest
`similarity` when that is >= `THRESHOLD`. Exact copies (same content hash) always cluster; a post whose
signature is ``b''`` (fewer than `MIN_WORDS` distinct words) clusters only that way.

What is compared (`dedupe_text`): NFKC, case-folded, ``ё`` read as ``е``, URLs removed; a trailing
"Read more" / "Читать далее" / "Подробнее" / "Толығырақ" / "The post ... appeared first on ...", and
trailing lines of credit ("Source: X", "Источник: X", "Дереккөз: X", "Фото: X", "via X") removed; every
run of characters that are not letters, digits or combining marks is one space. Syndicated copies often
carry another headline, so the title is left out when the body has at least `BODY_ONLY_WORDS` words; a
shorter body is compared together with its title. (The cost: distinct items whose bodies are the same
boilerplate of 20 words or more would cluster. None of the 1,143 distinct corpus items does.)

Shingles are single words (each post's set of distinct words), chosen by measurement: exact Jaccard of
the bodies of 1,089 distinct feed articles of the corpus with syndicated variants, share reaching 0.9
(``bench/dedupe_bench.py --shingles``):

    shingles        5% of words replaced   10%     20%    cut to 80%   most similar distinct pair
    words           57.9%                  1.4%    0      1.0%         0.75
    word 2-grams     2.2%                  0       0      0            0.75
    word 3-grams     1.7%                  0       0      0            0.74
    char 4-grams    21.9%                  0.7%    0      0.3%         0.79
    char 5-grams    12.3%                  0.6%    0      0.1%         0.79

Words tolerate the most editing while distinct articles stay far below the threshold, and they keep the
set small, so a signature is cheap. The price is word order (the same words in another order count as
a copy) and templates: bodies of 40-99 words that differ only in their numbers cluster 44% of the time
(8% for bodies under 40 words); word 3-grams would keep those apart but miss nearly every edited copy.

`THRESHOLD` = 0.9 estimated Jaccard, the figure in DESIGN.md. Measured with this module (the bench's
default run; share of variants that join their original under the store's rule):

    identical / whitespace, case, punctuation / "Source: X" line appended      100% / 100% / 100%
    title changed: body of >= 20 words / shorter body (compared with title)    100% / 3%
    5% / 10% / 20% of words replaced                                           61% / 11% / 0.3%
    truncated to the first 80% (Jaccard 0.8 by construction)                   9%
    false merges among the 621,055 pairs of 1,115 distinct articles            0 (highest similarity 0.68)

So "near-identical" means: the same text up to formatting, credits, headline and a few words (about one
word in twenty). Rewrites, and an excerpt against its full article, stay separate stories.
Estimator: mean error +0.0002, sd 0.025 against exact Jaccard (ideal for 128 permutations: 0.027),
the same as datasketch's MinHash.

LSH: `BANDS` x `ROWS` = 10 x 8 over the first 80 of the 128 permutations (the similarity of a candidate
pair still uses all 128), 10 index rows per post. A pair at similarity s becomes a candidate with
probability 1 - (1 - s**8)**10: 0.9999 at 0.95, 0.996 at 0.9, 0.97 at 0.85, 0.85 at 0.8, 0.04 at 0.5.
16 x 8 (all permutations) would give 0.9999 at 0.9, but the band index is the hottest write of a poll
(its keys are random, so every new post dirties index pages all over the file): measured on the ingest
bench (bench/ingest_bench.py, 50,000 posts), storing ran at 4,196 posts/s with 16 bands, 5,246 with
10 and 5,819 with 8 (0.989 at 0.9). 12 x 10 would give only 0.994 at 0.9; 32 x 4 makes 87% of pairs at
0.5 candidates. Speed: about 60 us per signature of a 1.5 KB post, 7 us for its band keys, 2 us per
similarity (one core of the bench machine; datasketch: 300 us per signature). `signatures` signs a poll's
posts in one pass, to the same bytes: most of a short post's signature is numpy's cost per call, so posts of
about 250 characters take 17-21 us each a poll at a time against 72-79 one by one (`bench/ingest_bench.py
--templates --stages`), 1.5 KB posts 70 against 119 (`bench/dedupe_bench.py`), on a shared machine.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used: a poll where every answer is a 304 never loads it
    import numpy as np
    import numpy.typing as npt

    _U64 = npt.NDArray[np.uint64]

THRESHOLD = 0.9  # estimated Jaccard of word sets at or above which two posts share a cluster
NUM_PERM = 128  # MinHash permutations; a signature is 1 + 4 * NUM_PERM bytes
BANDS = 10  # bands over the first BANDS * ROWS permutations; similarity uses all NUM_PERM
ROWS = 8  # BANDS * ROWS <= NUM_PERM
MIN_WORDS = 8  # fewer distinct words than this: no signature (b''), only exact copies cluster
BODY_ONLY_WORDS = 20  # a body of at least this many words is compared without its title
MAX_CHARS = 65_536  # only this much of the normalised text is compared (bounds time and tables)
FORMAT = 1  # first byte of every signature: signatures of another format never compare equal

_SIG_BYTES = 1 + 4 * NUM_PERM

_URL = re.compile(r"(?:https?://|www\.)\S+")
# Trailers are looked for at the very end only (cheap, and never cut a text in the middle).
_CREDIT_LINE = re.compile(r"[ \t]*(?:(?:sources?|photo|источники?|фото|дереккөз|сурет)[ \t]*:|via\b)", re.I)
_CREDIT_LINE_CHARS = 160
_READ_MORE = re.compile(
    r"\b(?:read more|continue reading|read the full (?:story|article)|читать далее|читать полностью"
    r"|подробнее|толығырақ)\W{0,6}$",
    re.I,
)
_READ_MORE_WINDOW = 40
_APPEARED_FIRST = re.compile(r"\bthe post .{1,300}? appeared first on .{1,200}$", re.I)  # WordPress feeds


@functools.cache
def _constants() -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], np.uint64, np.uint64]:
    """Permutation multipliers (odd) and offsets, and the polynomial base (and its inverse) for words."""
    import numpy as np

    raw = np.frombuffer(hashlib.shake_128(b"monitor.dedupe minhash v1").digest(8 * NUM_PERM), dtype="<u4")
    mult = raw[:NUM_PERM].astype(np.uint32) | np.uint32(1)
    add = raw[NUM_PERM:].astype(np.uint32)
    base = 0x100000001B3  # the FNV-1 64-bit prime: odd, so invertible mod 2**64
    return mult, add, np.uint64(base), np.uint64(pow(base, -1, 2**64))


@functools.cache
def _tables() -> tuple[npt.NDArray[np.int8], _U64, _U64]:
    """Word-character table for the BMP, powers of the base and of its inverse (built on first use)."""
    import numpy as np

    word = np.fromiter((_is_word_char(chr(i)) for i in range(0x10000)), dtype=np.int8, count=0x10000)
    _, _, base, base_inverse = _constants()
    powers = np.cumprod(np.full(MAX_CHARS + 1, base, dtype=np.uint64))  # wraps mod 2**64, as intended
    inverse = np.cumprod(np.full(MAX_CHARS + 1, base_inverse, dtype=np.uint64))
    one = np.ones(1, dtype=np.uint64)
    return word, np.concatenate((one, powers[:-1])), np.concatenate((one, inverse[:-1]))


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or unicodedata.category(ch)[0] == "M"  # marks belong to their letter


def _prepare(text: str) -> str:
    """Boilerplate trailers and URLs removed, NFKC, case-folded, 'ё' as 'е'; cut at MAX_CHARS."""
    text = text.rstrip()
    for _ in range(3):  # a text may end with "Read more" under a credit line, and so on
        cut = _trailer_start(text)
        if cut is None:
            break
        text = text[:cut].rstrip()
    text = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    if "http" in text or "www." in text:  # a plain substring test is far cheaper than the regex
        text = _URL.sub(" ", text)
    return text[:MAX_CHARS]


def _trailer_start(text: str) -> int | None:
    """Where a boilerplate trailer starts at the end of `text`, if it ends with one."""
    line_start = text.rfind("\n") + 1
    last = text[line_start:]
    if line_start and len(last) <= _CREDIT_LINE_CHARS and _CREDIT_LINE.match(last):
        return line_start  # a credit counts only as a line of its own
    if "appeared first on" in last and (m := _APPEARED_FIRST.search(last)):
        return line_start + m.start()
    m = _READ_MORE.search(text, max(0, len(text) - _READ_MORE_WINDOW))
    return m.start() if m else None


def _spans(s: str) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Code points of `s` and the start and end offsets of its words."""
    import numpy as np

    codes = np.frombuffer(s.encode("utf-32-le"), dtype="<u4")
    is_word = np.zeros(len(codes) + 2, dtype=np.int8)  # padded: every word has a rising and a falling edge
    if len(codes) and codes.max() > 0xFFFF:  # beyond the BMP (emoji, rare scripts): ask unicodedata
        is_word[1:-1] = _tables()[0].take(np.minimum(codes, 0xFFFF))  # U+FFFF is no word character
        astral = np.flatnonzero(codes > 0xFFFF)
        is_word[astral + 1] = [_is_word_char(chr(c)) for c in codes[astral].tolist()]
    else:
        is_word[1:-1] = _tables()[0].take(codes)
    edges = np.flatnonzero(np.diff(is_word))  # alternately the start and the end of a word
    return codes, edges[0::2], edges[1::2]


def _choose(title: str, text: str) -> tuple[str, ...]:
    """The prepared texts that are compared: the body alone when long enough, else title and body."""
    body = _prepare(text)
    if len(_spans(body)[1]) >= BODY_ONLY_WORDS:
        return (body,)
    return _prepare(title), body


def dedupe_text(title: str, text: str) -> str:
    """The normalised text that near-duplicate detection compares: its words joined by single spaces."""
    words: list[str] = []
    for s in _choose(title, text):
        _, starts, ends = _spans(s)
        words.extend(s[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True))
    return " ".join(words)


def _word_hashes(s: str) -> tuple[_U64, int]:
    """Position-free 64-bit polynomial hashes of the words of `s` (of their code points), and their count."""
    import numpy as np

    codes, starts, ends = _spans(s)
    _, powers, inverse = _tables()
    prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
    np.cumsum(codes * powers[: len(codes)], out=prefix[1:])
    return (prefix[ends] - prefix[starts]) * inverse[starts], len(starts)


def _word_set(title: str, text: str) -> npt.NDArray[np.uint32]:
    """32-bit hashes of the distinct words of what `dedupe_text` returns (computed without building it)."""
    import numpy as np

    h, count = _word_hashes(_prepare(text))
    if count < BODY_ONLY_WORDS:
        h = np.concatenate((h, _word_hashes(_prepare(title))[0]))
    h.sort()
    h = h[np.concatenate(([True], h[1:] != h[:-1]))] if len(h) else h
    return _finalised(h)


def _finalised(h: _U64) -> npt.NDArray[np.uint32]:
    """The top 32 bits of each word hash after the splitmix64 finaliser (a bijection: polynomial hashes have weak
    bits). Changes `h`."""
    import numpy as np

    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return (h >> np.uint64(32)).astype(np.uint32)


def signature(title: str, text: str) -> bytes:
    """MinHash signature of the post's word set: FORMAT byte, then NUM_PERM little-endian uint32.

    Permutation i maps a word's 32-bit hash x to (a_i * x + b_i) mod 2**32 (a_i odd, so a bijection);
    the bench checks that the estimates are unbiased. b'' when the compared text has fewer than
    MIN_WORDS distinct words. (`signatures` signs many posts at once, to the same bytes.)
    """
    import numpy as np

    words = _word_set(title, text)
    if len(words) < MIN_WORDS:
        return b""
    mult, add, _, _ = _constants()
    values = np.multiply.outer(words, mult)
    values += add
    mins: bytes = values.min(axis=0).astype("<u4").tobytes()
    return bytes([FORMAT]) + mins


_BATCH_WORDS = 32_768  # words in one MinHash matrix (x NUM_PERM uint32: 16 MiB at most)


def signatures(posts: Sequence[tuple[str, str]]) -> list[bytes]:
    """`signature` of each (title, text), computed for all of them in a few numpy calls (a poll's posts at
    once: the per-call cost of numpy, not the arithmetic, is most of a single post's signature)."""
    if len(posts) <= 1:  # none (a poll with nothing new loads no numpy), or one: fewer numpy calls one by one
        return [signature(*post) for post in posts]
    import numpy as np

    hashes, counts = _word_sets(posts)
    ends = np.cumsum(counts)
    signed = [i for i in range(len(posts)) if counts[i]]  # reduceat takes no empty segment
    out = [b""] * len(posts)
    mult, add, _, _ = _constants()
    head = bytes([FORMAT])
    taken = 0
    while taken < len(signed):  # posts in groups of at most _BATCH_WORDS words (a longer post is a group alone)
        first = int(ends[signed[taken]] - counts[signed[taken]])
        group = [signed[taken]]
        taken += 1
        while taken < len(signed) and ends[signed[taken]] - first <= _BATCH_WORDS:
            group.append(signed[taken])
            taken += 1
        values = np.multiply.outer(mult, hashes[first : int(ends[group[-1]])])  # permutations x words: the
        values += add[:, None]  # minima below run along rows, in memory order (4x faster than down columns)
        starts = np.array([ends[i] - counts[i] - first for i in group], dtype=np.intp)
        mins = np.minimum.reduceat(values, starts, axis=1).T.astype("<u4")
        for row, i in enumerate(group):
            if counts[i] >= MIN_WORDS:
                out[i] = head + mins[row].tobytes()
    return out


def _word_sets(posts: Sequence[tuple[str, str]]) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.intp]]:
    """32-bit hashes of the distinct words of what `dedupe_text` returns for each post (computed without building
    it), post after post, and how many belong to each post."""
    import numpy as np

    words, doc = _string_word_hashes([_prepare(text) for _, text in posts])
    short = np.flatnonzero(np.bincount(doc, minlength=len(posts)) < BODY_ONLY_WORDS)  # their titles count too
    if len(short):
        title_words, which = _string_word_hashes([_prepare(posts[i][0]) for i in short.tolist()])
        words, doc = np.concatenate((words, title_words)), np.concatenate((doc, short[which]))
        by_post = np.argsort(doc, kind="stable")
        words, doc = words[by_post], doc[by_post]
    # a word's repeats within its post dropped, posts kept in order: a stable sort by hash leaves equal hashes in
    # post order, so repeats within a post sit side by side (cheaper than sorting by post and hash)
    order = np.argsort(words, kind="stable")
    repeat = (words[order[1:]] == words[order[:-1]]) & (doc[order[1:]] == doc[order[:-1]])
    keep = np.ones(len(words), dtype=bool)
    keep[order[1:][repeat]] = False
    words, doc = words[keep], doc[keep]
    return _finalised(words), np.bincount(doc, minlength=len(posts))


def _string_word_hashes(strings: Sequence[str]) -> tuple[_U64, npt.NDArray[np.intp]]:
    """Position-free 64-bit polynomial hashes of the words of each string (of their code points), and the index
    of the string each word is in; strings are joined by spaces into runs of at most MAX_CHARS characters (the
    length of the tables of powers)."""
    import numpy as np

    _, powers, inverse = _tables()
    hashes: list[_U64] = []
    owners: list[npt.NDArray[np.intp]] = []
    index = 0
    while index < len(strings):
        run = [strings[index]]  # each is at most MAX_CHARS long (_prepare cuts it)
        size = len(run[0])
        while index + len(run) < len(strings) and size + 1 + len(strings[index + len(run)]) <= MAX_CHARS:
            size += 1 + len(strings[index + len(run)])
            run.append(strings[index + len(run)])
        codes, starts, ends = _spans(" ".join(run))
        prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
        np.cumsum(codes * powers[: len(codes)], out=prefix[1:])
        hashes.append((prefix[ends] - prefix[starts]) * inverse[starts])
        offsets = np.cumsum([0] + [len(s) + 1 for s in run[:-1]])
        owners.append(np.searchsorted(offsets, starts, side="right") - 1 + index)
        index += len(run)
    if not hashes:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.intp)
    return np.concatenate(hashes), np.concatenate(owners).astype(np.intp)


def _check(sig: bytes) -> None:
    if len(sig) != _SIG_BYTES or sig[0] != FORMAT:
        raise ValueError(f"not a format-{FORMAT} signature of {_SIG_BYTES} bytes: {len(sig)} bytes")


def band_keys(sig: bytes) -> tuple[int, ...]:
    """One signed 64-bit key per LSH band (SQLite INTEGER); the band index and format are mixed in.

    () for the empty signature; ValueError for bytes that are not a signature of this format.
    """
    if not sig:
        return ()
    _check(sig)
    return tuple(
        int.from_bytes(
            hashlib.blake2b(head + sig[start : start + 4 * ROWS], digest_size=8).digest(), "little", signed=True
        )
        for head, start in _BAND_HEADS
    )


_BAND_HEADS = tuple((bytes((FORMAT, band)), 1 + band * 4 * ROWS) for band in range(BANDS))  # hashed before each band


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the two posts' word sets, in [0, 1].

    0.0 when either signature is empty or the two are of different formats (they cannot be compared).
    """
    import numpy as np

    if not similarity_comparable(a, b):
        return 0.0
    va = np.frombuffer(a, dtype="<u4", offset=1)
    vb = np.frombuffer(b, dtype="<u4", offset=1)
    return int(np.count_nonzero(va == vb)) / NUM_PERM


def best_match(sig: bytes, others: list[bytes]) -> tuple[int, float]:
    """(index, similarity) of the first of `others` most similar to `sig` (as `similarity` scores it), in one
    pass over all of them; (-1, 0.0) when there are none."""
    import numpy as np

    comparable = [i for i, o in enumerate(others) if similarity_comparable(sig, o)]
    if not comparable:
        return -1, 0.0
    mine = np.frombuffer(sig, dtype="<u4", offset=1)
    theirs = np.frombuffer(b"".join(others[i][1:] for i in comparable), dtype="<u4").reshape(len(comparable), NUM_PERM)
    equal = np.count_nonzero(theirs == mine, axis=1)
    best = int(np.argmax(equal))  # the first of the highest, as a loop with a strict ">" would keep
    return comparable[best], int(equal[best]) / NUM_PERM


def similarity_comparable(a: bytes, b: bytes) -> bool:
    """Whether `similarity` compares the two at all (both signatures of this format), rather than saying 0.0."""
    return bool(a) and bool(b) and len(a) == len(b) == _SIG_BYTES and a[0] == b[0]
