"""Campaign and organic worlds served from 127.0.0.1 through `monitor poll` (real subprocess, store, SMTP).

The campaign world: one declaration posted by two channels and two accounts of one wall within 6 minutes.
The organic world: a wire story reprinted over hours, a press release on six sites over the morning, and
a channel cross-posting every post to its mirror within seconds, and a real campaign three days old (the
first poll brings it as history). Only the first world raises a campaign alert, with the default rule.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from pathlib import Path

from tests.conftest import RawServer, SmtpServer, body_of, respond, run_monitor, write_config

DECLARATION = (
    "Declaration of the People's Council of the northern region: the separatist referendum is called for "
    "Sunday, every patriot must come to the central square at noon and bring two neighbours to vote."
)
WIRE = (
    "The separatist movement in the neighbouring province lost its appeal in the supreme court on Tuesday, "
    "the court's press office said, adding that the ruling is final and cannot be challenged further."
)
RELEASE = (
    "Press release: the regional akimat opens a hotline for reports of separatist propaganda online; calls "
    "are free and anonymous, and the hotline works every day from nine in the morning to nine at night."
)

CHANNEL_POSTS = (
    "Morning digest: the separatist leaflets found in two districts were printed abroad, police say, and "
    "residents who find more of them are asked to hand them in at any station without touching them much.",
    "Evening note from our editors: three readers wrote about separatist chats in their building groups; we "
    "explain how to report such a group and what the law says about forwarding its messages to others.",
    "Weekend long read: how a separatist rumour travelled from one district chat to a national television "
    "studio in four days, told by the people who forwarded it and the fact-checkers who caught it late.",
)

NETWORK_POST = (
    "Breaking from our newsroom: the court has banned the separatist party's rally planned for Saturday in the "
    "regional capital, and the organisers say they will appeal the decision before the end of the week."
)

Item = tuple[str, str, str | None, datetime]  # (guid, text, author, published)


def rss(items: list[Item]) -> bytes:
    body = "".join(
        f"<item><guid>{guid}</guid><title>Statement</title><link>https://example.org/{guid}</link>"
        f"<description>{escape(text)}</description>"
        + (f"<author>noreply@example.org ({author})</author>" if author else "")
        + f"<pubDate>{format_datetime(when)}</pubDate></item>"
        for guid, text, author, when in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>f</title>{body}</channel></rss>'
    ).encode()


def serve(
    tmp_path: Path,
    server: RawServer,
    feeds: dict[str, list[Item]],
    smtp_port: int,
    groups: dict[str, str] | None = None,
) -> Path:
    sources = ""
    for name, items in feeds.items():
        server.routes[f"/{name}"] = respond(200, rss(items), {"Content-Type": "application/rss+xml"})
        group = f", group: {groups[name]}" if groups and name in groups else ""
        sources += f'\n          - {{name: {name}, type: feed, url: "{server.url("/" + name)}", robots: false{group}}}'
    return write_config(
        tmp_path,
        f"""
        store: monitor.db
        topics:
          separatism: [separatist*]
        sources:{sources}
        alerts:
          min_count: 100
          email: {{host: 127.0.0.1, port: {smtp_port}, tls: none, sender: m@example.org, to: [a@example.org]}}
        """,
    )


def campaign_alerts(config: Path) -> list[dict[str, object]]:
    result = run_monitor(config, "alerts", "--format", "json")
    assert result.returncode == 0, result.stderr
    return [a for a in json.loads(result.stdout) if a["kind"] == "campaign"]


def test_a_campaign_world_raises_one_campaign_alert_with_its_timeline(
    tmp_path: Path, raw_server: RawServer, smtp: SmtpServer
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    first = now - timedelta(minutes=20)
    feeds: dict[str, list[Item]] = {
        "tg-north": [("n1", DECLARATION, None, first)],
        "tg-patriot": [("p1", DECLARATION, None, first + timedelta(minutes=2))],
        "wall": [
            ("w1", DECLARATION.replace("noon", "midday"), "Ivan Petrov", first + timedelta(minutes=4)),
            ("w2", DECLARATION, "Olga S", first + timedelta(minutes=6)),
        ],
    }
    config = serve(tmp_path, raw_server, feeds, smtp.port)
    polled = run_monitor(config, "poll")
    assert polled.returncode == 0, polled.stderr
    assert "campaign" in polled.stdout
    (alert,) = campaign_alerts(config)
    assert (alert["topic"], alert["count"], alert["status"]) == ("separatism", 4, "sent")
    with closing(sqlite3.connect(tmp_path / "monitor.db")) as db:
        clusters = db.execute("SELECT count(DISTINCT cluster_id) FROM posts").fetchone()[0]
    assert clusters == 1 and alert["cluster_id"] is not None
    (message,) = smtp.sink.parsed()
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "[monitor] separatism: campaign, same text from 4 voices in 6 min"
    text = body_of(message, "plain")
    timeline = text.split("TIMELINE", 1)[1]
    rows = [line.split() for line in timeline.splitlines() if line[:3].strip().rstrip(".").isdigit()]
    assert [(row[4], row[5]) for row in rows[:2]] == [("first", "tg-north"), ("followed", "tg-patriot")]
    assert "wall / Ivan Petrov" in timeline and "+4m00s" in timeline and "+6m00s" in timeline
    assert 'wording changed: "noon" -> "midday"' in timeline
    table = run_monitor(config, "alerts")
    assert f"separatism: cluster {alert['cluster_id']}, 4 voices" in table.stdout, table.stdout
    # polling again finds nothing new and raises nothing more
    assert run_monitor(config, "poll").returncode == 0
    assert len(campaign_alerts(config)) == 1 and len(smtp.sink.messages) == 1


def test_organic_worlds_raise_no_campaign_alert(tmp_path: Path, raw_server: RawServer, smtp: SmtpServer) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    wire_at, morning = now - timedelta(hours=5), now - timedelta(hours=3)
    feeds: dict[str, list[Item]] = {
        "agency": [("a1", WIRE, None, wire_at)],
        "issuer": [("r0", RELEASE, None, morning)],
        "channel": [(f"c{i}", text, None, now - timedelta(hours=i + 1)) for i, text in enumerate(CHANNEL_POSTS)],
        "channel-mirror": [  # the same posts, 20 s later
            (f"m{i}", text, None, now - timedelta(hours=i + 1, seconds=-20)) for i, text in enumerate(CHANNEL_POSTS)
        ],
    }
    for index, hours in enumerate([0.4, 1.1, 1.6, 2.5, 3.2, 4.4]):  # the wire story, reprinted over hours
        feeds[f"outlet{index}"] = [(f"o{index}", WIRE, None, wire_at + timedelta(hours=hours))]
    for index in range(6):  # the press release, one site every 25 minutes through the morning
        feeds[f"site{index}"] = [(f"s{index}", RELEASE, None, morning + timedelta(minutes=10 + 25 * index))]
    network = ["net", "net-west", "net-east", "net-south"]  # one outlet's channels, configured as one group
    for index, name in enumerate(network):
        feeds[name] = [(f"n{index}", NETWORK_POST, None, now - timedelta(minutes=30, seconds=-15 * index))]
    old = now - timedelta(days=3)  # and a real campaign, but three days old: history, not news
    for index in range(5):
        feeds[f"tg-{index}"] = [(f"t{index}", DECLARATION, None, old + timedelta(minutes=index))]
    config = serve(tmp_path, raw_server, feeds, smtp.port, groups=dict.fromkeys(network[1:], "net"))
    polled = run_monitor(config, "poll")
    assert polled.returncode == 0, polled.stderr
    with closing(sqlite3.connect(tmp_path / "monitor.db")) as db:
        voices = dict(
            db.execute(
                "SELECT cluster_id, count(DISTINCT source) FROM posts GROUP BY cluster_id HAVING count(*) > 1"
            ).fetchall()
        )
    # the stories did cluster: 3 mirrored posts, the network's post, the old campaign, the wire story and the
    # press release (the network's four channels within a minute would be a campaign without their group)
    assert sorted(voices.values()) == [2, 2, 2, 4, 5, 7, 7]
    assert campaign_alerts(config) == [] and smtp.sink.messages == []
