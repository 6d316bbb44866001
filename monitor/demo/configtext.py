"""The demo's config.yaml: the project's topics, the four local sources and the local SMTP server.

Pure: does no I/O; takes the addresses, returns the file's text (validated by monitor.config when read).
"""

from __future__ import annotations

from datetime import datetime

from monitor import __version__
from monitor.demo import render, texts

DB_NAME = "monitor.db"
SENDER = "monitor-demo@example.org"
RECIPIENT = "analyst@example.org"


def config_text(base: str, smtp_port: int, zone: str, written: datetime) -> str:
    """The config `monitor demo` polls with; kept afterwards so that the store can be queried with it."""
    return f"""\
# Written by `monitor demo` at {written:%Y-%m-%d %H:%M:%S} UTC. Every source and the SMTP server below lived
# on this machine only while the demo ran: `monitor poll` with this file now finds nothing to read.
# Query what the demo stored:  monitor --config <this file> search 'сепаратист*'   (stats, alerts, status)
# Reference for every key: README.md, "Configuration".

store: {DB_NAME}                   # relative to this file

topics:                             # the same topics as the project's default config.yaml
  separatism: [separatism, separatist*, secessionist*, сепаратизм*, сепаратист*, бөлінушілік*]
  peoples-council:
    any: ["People's Council*", "Народн* совет*", "Халық кеңес*"]
    none: [football, футбол*]       # "Народный совет болельщиков" of a football club is not the topic

sources:
  - name: steppe-herald             # {texts.HERALD_NAME}: English, RSS 2.0
    type: feed
    url: {base}{render.HERALD_FEED}
  - name: severnye-vesti            # {texts.VESTI_NAME}: Russian, Atom
    type: feed
    url: {base}{render.VESTI_FEED}
  - name: qyzyljar-news             # {texts.NEWS_NAME}: a news site in windows-1251, with comments
    type: html
    url: {base}{render.NEWS_LISTING}
    follow: h2.teaser-title a @href # open every article linked from the front page ...
    max_follow: 30
    items: article.story            # ... and read the article ...
    fields:
      title: h1.story-title
      text: .story-body
      author: .story-meta .author
      published: time.published @datetime
    comments:                       # ... and its comments (each a post whose parent_id is the article)
      items: li.comment
      fields:
        text: .comment-body
        author: .who
        published: time @datetime
        link: a.anchor @href
  - name: dala-channel              # {texts.CHANNEL_NAME}: a Telegram channel's public preview
    type: telegram
    channel: {texts.CHANNEL}
    url: {base}{render.CHANNEL_PAGE}   # instead of https://t.me/s/{texts.CHANNEL}
    max_pages: 10                   # the first poll reads back a week of messages

defaults:
  interval: 10m
  timeout: 10s
  user_agent: "monitor/{__version__} (monitor demo on this machine)"

alerts:
  window: 1h
  baseline: 7d
  min_count: 3
  cooldown: 6h
  timezone: {zone}
  email:
    host: 127.0.0.1
    port: {smtp_port}
    tls: none
    sender: {SENDER}
    to: [{RECIPIENT}]
    timeout: 10s
"""
