"""The demo's local site as bytes: two feeds, a news site with comments, a Telegram channel preview.

Pure: does no I/O; takes the `World` and the site's base address, returns pages. The markup is what
the collectors read in the wild: RSS 2.0 and Atom, a WordPress-like article page whose comments follow
the article (served in windows-1251, as many sites of the region still are, Kazakh letters as character
references), and the `t.me/s/<channel>` preview with its `?before=<id>` paging.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from html import escape

from monitor.demo import texts
from monitor.demo.world import LOCAL, Article, Message, World

HERALD_FEED = "/herald/rss.xml"
VESTI_FEED = "/vesti/atom.xml"
NEWS_LISTING = "/qyzyljar/"
CHANNEL_PAGE = f"/s/{texts.CHANNEL}"
MESSAGES_PER_PAGE = 20  # as t.me/s/ shows
NEWS_CHARSET = "windows-1251"
_MONTHS = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
           "ноября", "декабря")  # fmt: skip


@dataclass(frozen=True)
class Page:
    """One response body and its type; `etag` lets a second poll get 304 Not Modified."""

    content_type: str
    body: bytes

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'


class Site:
    """Every page of the local site, by path (and `before` for the channel's older pages)."""

    def __init__(self, world: World, base: str) -> None:
        self.world = world
        self.base = base.rstrip("/")
        self.pages: dict[str, Page] = {
            "/": _html(_index(self.base)),
            "/robots.txt": Page("text/plain; charset=utf-8", b"User-agent: *\nDisallow: /admin/\n"),
            HERALD_FEED: Page("application/rss+xml; charset=utf-8", rss(world.herald, self.base, world.now).encode()),
            VESTI_FEED: Page("application/atom+xml; charset=utf-8", atom(world.vesti, self.base, world.now).encode()),
            NEWS_LISTING: _legacy(news_listing(world.news)),
        }
        for article in world.news:
            self.pages[news_path(article)] = _legacy(news_article(article))

    def page(self, path: str, query: Mapping[str, str]) -> Page | None:
        if path == CHANNEL_PAGE:
            before = query.get("before", "")
            return _html(channel_page(self.world.messages, int(before) if before.isdigit() else None))
        return self.pages.get(path)


def _html(text: str) -> Page:
    return Page("text/html; charset=utf-8", text.encode())


def _legacy(text: str) -> Page:
    return Page(f"text/html; charset={NEWS_CHARSET}", text.encode(NEWS_CHARSET, errors="xmlcharrefreplace"))


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


def _local_iso(when: datetime) -> str:
    return when.astimezone(LOCAL).isoformat()


def _local_words(when: datetime) -> str:
    local = when.astimezone(LOCAL)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"


def _index(base: str) -> str:
    links = [
        (HERALD_FEED, texts.HERALD_NAME + " — RSS"),
        (VESTI_FEED, texts.VESTI_NAME + " — Atom"),
        (NEWS_LISTING, texts.NEWS_NAME),
        (CHANNEL_PAGE, texts.CHANNEL_NAME + " — Telegram"),
    ]
    items = "".join(f'<li><a href="{base}{path}">{escape(name)}</a></li>' for path, name in links)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>monitor demo</title></head>'
        f"<body><h1>monitor demo</h1><p>{escape(texts.BANNER_EN)}</p><ul>{items}</ul></body></html>"
    )


# --------------------------------------------------------------------------------------------- feeds
def rss(articles: Sequence[Article], base: str, now: datetime) -> str:
    """The English outlet's RSS 2.0 feed, newest first."""
    items = []
    for a in articles:
        link = f"{base}/herald/news/{a.slug}.html"
        items.append(
            f"<item><title>{escape(a.title)}</title><link>{escape(link)}</link>"
            f'<guid isPermaLink="true">{escape(link)}</guid><pubDate>{format_datetime(a.published)}</pubDate>'
            f"<dc:creator>{escape(a.author)}</dc:creator><description>{escape(_paragraphs(a.text))}</description>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">'
        f"<channel><title>{escape(texts.HERALD_NAME)}</title><link>{base}/herald/</link>"
        f"<description>{escape(texts.BANNER_EN)}</description><language>en</language>"
        f"<lastBuildDate>{format_datetime(now)}</lastBuildDate>"
        f'<atom:link href="{base}{HERALD_FEED}" rel="self" type="application/rss+xml"/>'
        + "\n".join(items)
        + "</channel></rss>\n"
    )


def atom(articles: Sequence[Article], base: str, now: datetime) -> str:
    """The Russian outlet's Atom feed, newest first, times in local time as the outlet writes them."""
    entries = []
    for a in articles:
        entries.append(
            f'<entry><title>{escape(a.title)}</title><link rel="alternate" href="{base}/vesti/{a.slug}"/>'
            f"<id>tag:monitor-demo.invalid,2026:vesti/{a.slug}</id>"
            f"<published>{_local_iso(a.published)}</published><updated>{_local_iso(a.published)}</updated>"
            f"<author><name>{escape(a.author)}</name></author>"
            f'<content type="html">{escape(_paragraphs(a.text))}</content></entry>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ru">'
        f"<title>{escape(texts.VESTI_NAME)}</title><subtitle>{escape(texts.BANNER_RU)}</subtitle>"
        f'<link rel="alternate" href="{base}/vesti/"/><link rel="self" href="{base}{VESTI_FEED}"/>'
        f"<id>tag:monitor-demo.invalid,2026:vesti</id><updated>{_local_iso(now)}</updated>"
        + "\n".join(entries)
        + "</feed>\n"
    )


# --------------------------------------------------------------------------------------------- news site
def news_path(article: Article) -> str:
    return f"{NEWS_LISTING}news/{article.slug}.html"


def _news_page(title: str, main: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="ru"><head><meta charset="{NEWS_CHARSET}"><title>{escape(title)}</title>'
        f'</head><body><header class="site-header"><a class="logo" href="{NEWS_LISTING}">'
        f'{escape(texts.NEWS_NAME)}</a><p class="banner">{escape(texts.BANNER_RU)}</p></header>'
        f'<main class="layout">{main}</main><footer>© {escape(texts.NEWS_NAME)}</footer></body></html>\n'
    )


def news_listing(articles: Sequence[Article]) -> str:
    """The news site's front page: one teaser per article, newest first."""
    teasers = "".join(
        f'<div class="teaser"><h2 class="teaser-title"><a href="{news_path(a)}">{escape(a.title)}</a></h2>'
        f'<time datetime="{_local_iso(a.published)}">{_local_words(a.published)}</time>'
        f' <span class="comments-count">{len(a.comments)}</span></div>'
        for a in articles
    )
    return _news_page(texts.NEWS_NAME, f'<section class="news-list">{teasers}</section>')


def news_article(article: Article) -> str:
    """An article page: the article, then its comment section (as WordPress lays them out)."""
    comments = "".join(
        f'<li class="comment" id="{c.anchor}"><div class="comment-head"><span class="who">{escape(c.author)}</span> '
        f'<a class="anchor" href="#{c.anchor}"><time datetime="{_local_iso(c.published)}">'
        f"{_local_words(c.published)}</time></a></div>"
        f'<div class="comment-body">{_paragraphs(c.text)}</div></li>'
        for c in article.comments
    )
    main = (
        f'<article class="story" id="story-{escape(article.slug)}"><h1 class="story-title">{escape(article.title)}'
        f'</h1><div class="story-meta"><span class="author">{escape(article.author)}</span> · '
        f'<time class="published" datetime="{_local_iso(article.published)}">{_local_words(article.published)}'
        f'</time></div><div class="story-body">{_paragraphs(article.text)}</div></article>'
        f'<section class="comments"><h3>Комментарии ({len(article.comments)})</h3>'
        f'<ol class="comment-list">{comments}</ol></section>'
    )
    return _news_page(article.title, main)


# --------------------------------------------------------------------------------------------- telegram
def channel_page(messages: Sequence[Message], before: int | None) -> str:
    """The t.me/s/ page of the newest `MESSAGES_PER_PAGE` messages older than `before` (all when None)."""
    older = [m for m in messages if before is None or m.number < before]
    shown = older[-MESSAGES_PER_PAGE:]
    prev = ""
    if shown and len(older) > len(shown):
        prev = f'<link rel="prev" href="{CHANNEL_PAGE}?before={shown[0].number}">'
    body = "".join(_message(m) for m in shown)
    name = escape(texts.CHANNEL_NAME)
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{name} – Telegram</title>'
        f'<meta property="og:title" content="{name}">{prev}</head>'
        '<body class="widget_frame_base tgme_webpreview"><header class="tgme_header"><div class="tgme_channel_info">'
        f'<div class="tgme_channel_info_header_title"><span dir="auto">{name}</span></div>'
        f'<div class="tgme_channel_info_description">{escape(texts.BANNER_RU)}</div></div></header>'
        f'<main class="tgme_main"><section class="tgme_channel_history js-message_history">{body}</section>'
        "</main></body></html>\n"
    )


def _message(m: Message) -> str:
    permalink = f"https://t.me/{texts.CHANNEL}/{m.number}"
    forwarded = ""
    if m.forwarded_from:
        forwarded = (
            '<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from '
            f'<span class="tgme_widget_message_forwarded_from_name" dir="auto">{escape(m.forwarded_from)}</span></div>'
        )
    text = "<br/>".join(escape(line) for line in m.text.split("\n"))
    return (
        '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
        '<div class="tgme_widget_message text_not_supported_wrap js-widget_message" '
        f'data-post="{texts.CHANNEL}/{m.number}">'
        '<div class="tgme_widget_message_bubble"><div class="tgme_widget_message_author accent_color">'
        f'<a class="tgme_widget_message_owner_name" href="https://t.me/{texts.CHANNEL}"><span dir="auto">'
        f"{escape(texts.CHANNEL_NAME)}</span></a></div>{forwarded}"
        f'<div class="tgme_widget_message_text js-message_text" dir="auto">{text}</div>'
        '<div class="tgme_widget_message_footer compact js-message_footer"><div class="tgme_widget_message_info">'
        f'<span class="tgme_widget_message_views">{_views(m.views)}</span><span class="copyonly"> views</span>'
        f'<span class="tgme_widget_message_meta"><a class="tgme_widget_message_date" href="{permalink}">'
        f'<time datetime="{m.published.isoformat()}" class="time">{m.published.astimezone(LOCAL):%H:%M}</time>'
        "</a></span></div></div></div></div></div>"
    )


def _views(count: int) -> str:
    """As Telegram shows them: 947, 2.9K, 1.2M."""
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}K".replace(".0K", "K")
    return f"{count / 1_000_000:.1f}M".replace(".0M", "M")
