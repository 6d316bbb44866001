"""HTML parsing against hostile pages, and what the structure limits cost on real ones.

    .venv/bin/python bench/parse_bench.py [--repeat 5] [--cap 60]

1. Hostile pages (1.4 MB of unclosed <div>s; one element with 40,000 attributes; 20,000 distinct <b>s):
   seconds for what the html collector does now (`read_page`: structure limits, then selectolax), and for
   what it did before (selectolax on the whole page), the latter run in a worker process stopped after
   `--cap` seconds (the issue measured 702 s for the first page).
2. The corpus pages with their golden-file selectors: `read_page` throughput, and the share of it the
   structure check takes (`bound_html` alone against the whole `read_page`, same process, repeated).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.collectors.html import read_page  # noqa: E402
from monitor.collectors.structure import bound_html  # noqa: E402
from monitor.exceptions import ParseTimeout  # noqa: E402
from monitor.workers import Workers  # noqa: E402
from tests import test_collect_html as golden  # noqa: E402

HOSTILE = {
    "1.4 MB of unclosed <div>s": b"<html><body>" + b"<div>" * 280_000,
    "one element with 40,000 attributes": b"<html><body><div " + b" ".join(b"a%d=x" % i for i in range(40_000)) + b">",
    "20,000 distinct unclosed <b>s, then text": b"<html><body>"
    + b"".join(b"<b c=%d>" % i for i in range(20_000))
    + b"<p>x</p>" * 200,
}


def unbounded(body: bytes) -> int:
    """The parse before structure limits: the whole page to selectolax."""
    return len(LexborHTMLParser(body.decode("utf-8", "replace")).css("div"))


def hostile(cap: float) -> None:
    # The worker unpickles the job by module name: give it this module as `bench.parse_bench`, not `__main__`.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    from bench.parse_bench import unbounded as job

    source = golden.html_source(Path(tempfile.mkdtemp()), "https://h.kz/", "items: div\nfields: {title: h2}")
    workers = Workers((), processes=1)
    try:
        for name, body in HOSTILE.items():
            started = time.perf_counter()
            page = read_page(body, content_type="text/html", url="https://h.kz/", source=source, now=golden.NOW)
            after = time.perf_counter() - started
            started = time.perf_counter()
            try:
                asyncio.run(workers.parse(len(body), job, body, time_limit=cap))
                before = f"{time.perf_counter() - started:.2f} s"
            except ParseTimeout:
                before = f"> {cap:g} s (stopped at the cap)"
            cut = "cut" if page.warnings else "not cut"
            print(f"{name}: now {after:.3f} s ({cut}, {len(page.items)} items); before {before}")
    finally:
        workers.close()


def corpus(repeat: int) -> None:
    cases = []
    for case in golden.CASES.values():
        kind, rel = case.capture.split(":", 1)
        path = (golden.CORPUS if kind == "corpus" else golden.FIXTURES) / rel
        source = golden.html_source(Path(tempfile.mkdtemp()), case.url, case.config)
        cases.append((path.read_bytes(), case.url, source))
    total = sum(len(body) for body, _, _ in cases)
    shares, rates = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        for body, url, source in cases:
            read_page(body, content_type="text/html; charset=utf-8", url=url, source=source, now=golden.NOW)
        whole = time.perf_counter() - started
        texts = [body.decode("utf-8", "replace") for body, _, _ in cases]
        started = time.perf_counter()
        for text in texts:
            bound_html(text)
        shares.append((time.perf_counter() - started) / whole)
        rates.append(total / whole / 1e6)
    print(
        f"corpus: {len(cases)} pages, {total / 1e6:.2f} MB: read_page {min(rates):.1f}-{max(rates):.1f} MB/s over "
        f"{repeat} runs; the structure check is {100 * min(shares):.1f}-{100 * max(shares):.1f}% of it "
        f"(median {100 * statistics.median(shares):.1f}%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cap", type=float, default=60.0, help="seconds before the unbounded parse is stopped")
    args = parser.parse_args()
    corpus(args.repeat)
    hostile(args.cap)


if __name__ == "__main__":
    main()
