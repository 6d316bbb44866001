"""One source of every type in one config, served from 127.0.0.1 by real captures: `monitor poll` fills the
store with every expected post once, comments linked to their articles."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import REPO, RawServer, invoke, respond, write_config

FIXTURES = REPO / "tests" / "fixtures"


def serve_everything(server: RawServer, corpus: Path) -> dict[str, int]:
    """Routes for each source type; returns the posts each source must store."""

    def route(path: str, body: bytes, ctype: str) -> None:
        server.routes[path] = respond(200, body, {"Content-Type": ctype})

    route("/rss", (corpus / "rss/en_bbc-world.xml").read_bytes(), "application/rss+xml")
    route("/news/", (FIXTURES / "html/ru_news_listing.html").read_bytes(), "text/html; charset=utf-8")
    route(
        "/news/2026/03/01/narodnyj-sovet.html",
        (FIXTURES / "html/ru_news_article.html").read_bytes(),
        "text/html; charset=utf-8",
    )
    route("/s/clashreport", (corpus / "telegram/clashreport_excerpt.html").read_bytes(), "text/html; charset=utf-8")
    route(
        "/api/v1/timelines/tag/hoot",
        (corpus / "api/mastodon/timelines_tag_page1_localhost.json").read_bytes(),
        "application/json",
    )
    route(
        "/r/AskReddit/new.json", (corpus / "api/reddit/r-askreddit_new_limit100.json").read_bytes(), "application/json"
    )
    route("/method/wall.get", (corpus / "api/vk/wall.get_extended_copy_history.json").read_bytes(), "application/json")
    mastodon = json.loads((corpus / "api/mastodon/timelines_tag_page1_localhost.json").read_text())
    reddit = json.loads((corpus / "api/reddit/r-askreddit_new_limit100.json").read_text())
    vk = json.loads((corpus / "api/vk/wall.get_extended_copy_history.json").read_text())
    return {
        "bbc": 33,
        "vestnik": 1 + 4,  # the article the listing links to (the only one served) and its 4 comments with text
        "clashreport": 3,
        "hoot": len({(s.get("reblog") or s)["uri"] for s in mastodon}),  # boosts are their original status
        "askreddit": len(reddit["data"]["children"]),
        "vk-wall": len(vk["response"]["items"]),
    }


def test_every_source_type_stores_every_post_once(tmp_path: Path, corpus: Path, raw_server: RawServer) -> None:
    expected = serve_everything(raw_server, corpus)
    base = raw_server.base
    config = write_config(
        tmp_path,
        f"""
store: store.db
topics:
  separatism: [separatism, separatist*, сепаратизм*, сепаратист*]
  peoples-council: ["People's Council*", "Народн* совет*", "Халық кеңес*"]
sources:
  - {{name: bbc, type: feed, url: "{base}/rss"}}
  - name: vestnik
    type: html
    url: {base}/news/
    follow: a.headline @href
    timezone: Asia/Almaty
    items: article.story
    fields: {{title: .story-title, text: .story-body, published: time.published, author: .story-meta .author}}
    comments:
      items: li.comment
      fields: {{author: .who, text: .comment-body, published: ".comment-head a.anchor, .comment-head .when",
               link: a.anchor @href}}
  - {{name: clashreport, type: telegram, channel: clashreport, url: "{base}/s/clashreport"}}
  - {{name: hoot, type: mastodon, url: "{base}/api/v1/timelines/tag/hoot"}}
  - {{name: askreddit, type: reddit, url: "{base}/r/AskReddit/new.json"}}
  - {{name: vk-wall, type: vk, domain: someclub, url: "{base}/method/wall.get"}}
""",
    )
    env = {"VK_SERVICE_TOKEN": "test-token-never-stored"}
    first = invoke(config, "poll", "--format", "json", env=env)
    assert first.returncode == 0, first.stderr
    rows = {r["source"]: r for r in json.loads(first.stdout)}
    assert all(r["status"] == "ok" for r in rows.values()), rows
    db = sqlite3.connect(str(tmp_path / "store.db"))
    counts = dict(db.execute("SELECT source, count(*) FROM posts GROUP BY source").fetchall())
    assert counts == expected
    # comments point at the article of their page
    article = db.execute("SELECT id FROM posts WHERE source = 'vestnik' AND parent_id IS NULL").fetchall()
    assert len(article) == 1
    parents = {
        r[0] for r in db.execute("SELECT parent_id FROM posts WHERE source = 'vestnik' AND parent_id IS NOT NULL")
    }
    assert parents == {article[0][0]}
    # the Russian article matches both topics; nothing of the token was kept anywhere
    topics = {
        r[0]
        for r in db.execute(
            "SELECT DISTINCT m.topic FROM matches m JOIN posts p ON p.id = m.post_id WHERE p.source = 'vestnik'"
        )
    }
    assert topics == {"separatism", "peoples-council"}
    dump = "\n".join(db.iterdump())
    assert "test-token-never-stored" not in dump
    db.close()
    # a second poll stores nothing again
    second = invoke(config, "poll", "--format", "json", env=env)
    assert second.returncode == 0
    assert sum(r["new"] for r in json.loads(second.stdout)) == 0
    db = sqlite3.connect(str(tmp_path / "store.db"))
    assert dict(db.execute("SELECT source, count(*) FROM posts GROUP BY source").fetchall()) == expected
    db.close()


@pytest.mark.parametrize("kind", ["feed", "html", "telegram", "mastodon", "reddit", "vk"])
def test_status_shows_each_type(tmp_path: Path, kind: str) -> None:
    extra = {
        "feed": "url: https://e.org/rss",
        "html": "url: https://e.org/\n    items: a\n    fields: {title: h1}",
        "telegram": "channel: somechannel",
        "mastodon": "url: https://m.example/api/v1/timelines/tag/x",
        "reddit": "url: https://www.reddit.com/r/x/new.json",
        "vk": "domain: club",
    }[kind]
    config = write_config(tmp_path, f"topics: {{t: [x]}}\nsources:\n  - name: s\n    type: {kind}\n    {extra}\n")
    result = invoke(config, "status", "--format", "json")
    assert result.returncode == 0
    (row,) = json.loads(result.stdout)
    assert row["type"] == kind and row["state"] == "never polled"
