"""Structure limits for HTML: hostile pages are cut where they pass a limit; real pages pass untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.collectors.htmltext import html_to_text
from monitor.collectors.structure import MAX_ATTRIBUTES, MAX_DEPTH, WALK_FROM, bound_html

DEEP = "<html><body>" + "<div>" * 280_000  # 1.4 MB: minutes for lexbor before the limits


def test_unclosed_divs_are_cut_where_they_pass_the_depth_limit() -> None:
    kept, warning = bound_html(DEEP)
    assert kept == "<html><body>" + "<div>" * MAX_DEPTH
    assert warning == (
        f"the page has elements nested more than {MAX_DEPTH} deep at character {len(kept):,} of {len(DEEP):,}: "
        "only the part before it was read (a hostile or broken page)"
    )


def test_an_element_with_too_many_attributes_is_cut_before_it() -> None:
    page = "<p>before</p><div " + " ".join(f"a{i}=x" for i in range(40_000)) + ">after</div>"
    kept, warning = bound_html(page)
    assert kept == "<p>before</p>" and warning is not None
    assert f"an element with more than {MAX_ATTRIBUTES} attributes at character 13" in warning


def test_stray_end_tags_cannot_hide_depth() -> None:
    kept, warning = bound_html("<div></span>" * (WALK_FROM + 1))
    assert warning is not None and kept.count("<div>") == MAX_DEPTH


def test_an_svg_breakout_cannot_hide_depth() -> None:
    kept, warning = bound_html("<svg>" + "<div/>" * (WALK_FROM + 1))  # <div/> inside svg ends the svg
    assert warning is not None and kept.count("<div/>") == MAX_DEPTH - 1  # the unclosed svg counts too


@pytest.mark.parametrize(
    "page",
    [
        "<svg>" + "<path d='M0 0'/>" * (WALK_FROM + 1) + "</svg>",  # icons: self-closed inside svg
        "<ul>" + "<li>item" * (WALK_FROM + 1) + "</ul>",  # end tags that are optional
        "<p>" + "line<br>" * (WALK_FROM + 1),  # void elements
        ("<div><p>x</p></div>" * (WALK_FROM + 1)),
        "<img " + " ".join(f'data-{i}="v"' for i in range(MAX_ATTRIBUTES)) + ">",  # at the limit
        '<img srcset="' + ", ".join(f"/i/{n}.jpg {n}w" for n in range(300)) + '">',  # a long attribute
    ],
    ids=["svg icons", "unclosed li", "br", "balanced", "256 attributes", "long srcset"],
)
def test_ordinary_structure_is_never_cut(page: str) -> None:
    kept, warning = bound_html(page)
    assert warning is None and kept is page


def test_tags_inside_comments_scripts_and_styles_open_nothing() -> None:
    """As the HTML tokenizer reads them: a script's strings full of <div> (templates, inline JSON) must not cut
    the article after them."""
    filler = "<p>x</p>" * WALK_FROM
    unclosed = "<div>" * (MAX_DEPTH + 100)
    page = (
        f"<html><body>{filler}<script>var t = '{unclosed}';</SCRIPT><!-- {unclosed} -->"
        f"<style>/* {unclosed} */</style><textarea>{unclosed}</textarea><article><h2>kept</h2></article>"
    )
    assert bound_html(page) == (page, None)


def test_a_raw_text_element_hides_depth_only_until_it_closes() -> None:
    page = "<script></style>" + "<div>" * 10 + "</script>" + "<div>" * (WALK_FROM + 1)
    kept, warning = bound_html(page)
    assert warning is not None and kept.count("<div>") == 10 + MAX_DEPTH  # </style> did not end the script


def test_every_corpus_page_passes_untouched(corpus: Path) -> None:
    pages = sorted((corpus / "html").glob("*.html")) + sorted((corpus / "telegram").glob("*.html"))
    assert pages
    for path in pages:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert bound_html(text) == (text, None), path.name


@given(st.lists(st.sampled_from(["<div>", "</div>", "<p>", "<br>", "</span>", "<svg>", "<b/>", "x", " a=1"])))
def test_what_is_kept_is_a_prefix(parts: list[str]) -> None:
    page = "".join(parts)
    kept, warning = bound_html(page)
    assert page.startswith(kept) and (warning is None) == (kept == page)


def test_html_to_text_of_a_hostile_fragment_is_bounded() -> None:
    text = html_to_text("<p>Сепаратисты заявили</p>" + "<div>" * 50_000 + "tail")
    assert text == "Сепаратисты заявили"
