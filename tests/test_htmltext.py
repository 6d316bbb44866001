"""HTML fragment -> plain text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.collectors.htmltext import html_to_text, tidy_text


def test_scripts_styles_and_friends_are_dropped_with_their_content() -> None:
    html = (
        "<style>p{color:red}</style><p>Visible</p><script>alert('x')</script>"
        "<SCRIPT type=text/javascript>var a = '<p>not text</p>';</SCRIPT><noscript>enable js</noscript>"
        "<template><p>hidden</p></template>after"
    )
    assert html_to_text(html) == "Visible\nafter"


def test_nested_blocks_become_lines() -> None:
    html = "<div><div><p>One <b>bold</b> line</p>tail<ul><li>a</li><li>b<br>c</li></ul></div></div><h2>Head</h2>"
    assert html_to_text(html) == "One bold line\ntail\na\nb\nc\nHead"


def test_inline_elements_do_not_break_words() -> None:
    assert html_to_text("<p>Ka<em>zakh</em>stan and <a href='#'>link</a>!</p>") == "Kazakhstan and link!"


def test_entities_are_decoded_and_whitespace_collapsed() -> None:
    assert html_to_text("<p>AT&amp;T&nbsp;&mdash;\n\n   &#8220;x&#x201D;  </p>") == "AT&T — “x”"


def test_escaped_html_after_the_xml_parser_unescaped_it() -> None:
    # "&lt;p&gt;Hi&lt;/p&gt;" in a feed reaches us as "<p>Hi</p>"
    assert html_to_text("<p>Hi</p><p>there &amp; you</p>") == "Hi\nthere & you"


def test_spelled_out_script_tags_are_defused() -> None:
    assert html_to_text("<p>Use &lt;script&gt; tags</p>") == "Use < script> tags"
    assert html_to_text("Plain text about &lt;SCRIPT") == "Plain text about < SCRIPT"


def test_plain_text_passes_through() -> None:
    assert html_to_text("Just text, a < b and c > d") == "Just text, a < b and c > d"
    assert html_to_text("Line one\n\n  Line   two ") == "Line one\nLine two"
    assert html_to_text("") == ""


def test_broken_html() -> None:
    assert html_to_text("<p>unclosed <b>bold<div>block") == "unclosed bold\nblock"
    assert html_to_text("<p>a</p></div></div><p>b") == "a\nb"


def test_tidy_text_keeps_line_breaks() -> None:
    assert tidy_text(" a  b \n\n\tc ") == "a b\nc"


@given(st.text(max_size=500))
def test_html_to_text_never_raises_and_never_leaves_a_script(text: str) -> None:
    assert "<script" not in html_to_text(text).lower()


@given(
    st.lists(
        st.sampled_from(["<script>", "</script>", "<p>", "</p>", "<div>", "x", " ", "&lt;script&gt;", "<b>", "<"]),
        max_size=40,
    )
)
def test_markup_soup_never_yields_a_script_tag(parts: list[str]) -> None:
    assert "<script" not in html_to_text("".join(parts)).lower()


_PIECES = [
    "<p>", "</p>", "<br>", "<br/>", "<BR />", "<div>", "</div>", "<li>", "</li>", "<ul>", "</ul>", "<h2>", "</h2>",
    "<b>", "</b>", "<em>", "</em>", "<span>", "</span>", "<blockquote>", "</blockquote>", "&amp;", "&lt;", "&gt;",
    "&quot;", "&nbsp;", "&mdash;", "&#39;", "&#160;", "&#8220;", "&amp", "&T", "&lt;script&gt;", "AT&T", "a < b",
    " ", "  ", "\n", "\t", "\x0c", "\u00a0", "word", "Слово", "ё", "x\u0301", "<a href='x'>", "</a>",
    "<script>x</script>", "\r\n", "\x00", '<a href="https://x.example/?a=1&amp;b=2">', "<img src=x.png alt='pic'>",
    '<span class="c" hidden>', "<p style='a>b'>", "<code>", "</code>", "<pre>", "</pre>", "<hr/>", "<figure>",
    "</figure>", "<figcaption>", '<a title="a<b">', "<td>", "<table>", '<img src="a"/>', "<a href=x>",
]  # fmt: skip
_SIMPLE_PARTS = st.lists(st.sampled_from(_PIECES) | st.text(max_size=8), max_size=30).map("".join)


@given(_SIMPLE_PARTS)
def test_fragments_read_without_the_parser_read_as_with_it(fragment: str) -> None:
    # simple markup (a few tags without attributes, common references) skips the HTML parser: same text
    from monitor.collectors import htmltext

    marked = htmltext._BLOCK_TAG.sub(htmltext._BREAK + "<", fragment.replace(htmltext._BREAK, ""))
    assert html_to_text(fragment, checked=True) == htmltext._parsed(marked, fragment) or not htmltext.looks_like_html(
        fragment
    )
