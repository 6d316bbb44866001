"""What an alert says on a notify channel (Telegram, Slack, Matrix, ntfy, a webhook...): a title and a short text.

Pure: does no I/O; takes the same report values as the emails (`monitor.emails`) and returns a `Notice`. A
notice is plain text, short enough for a chat message: the topic, the count against the expected, the top 3
stories with their links, and a link to the alert (or, without `alerts.link_base`, the command that lists its
posts). Apprise renders it in each service's own form; the chart goes as an attachment where the service takes
one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor import emails
from monitor.emails import local_time, plural, utc_offset, window_phrase

TOP_STORIES = 3  # stories listed in a spike notice
TITLE_CHARS = 70  # a story's title is cut to this in a notice
CHART_NAME = "chart.png"  # the attachment's file name


@dataclass(frozen=True)
class Notice:
    """One message for a notify channel."""

    title: str
    body: str  # plain text, lines separated by \n
    attachments: tuple[tuple[str, bytes], ...] = ()  # (file name, content): the chart, where there is one


def _short(text: str, limit: int = TITLE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _story_title(post: emails.AlertPost) -> str:
    return _short(post.title) or _short(post.text) or "(no text)"


def spike_notice(report: emails.SpikeReport, chart: bytes | None = None) -> Notice:
    window = report.window_end - report.window_start
    title = emails.spike_subject(report.topic, report.count, report.expected, window)
    zone = report.zone
    lines = [
        f"{report.topic}: {report.count} posts in {window_phrase(window)}, expected {report.expected:.1f} "
        f"(score {report.score:.1f}); {plural(report.stories, 'story', 'stories')} from "
        f"{plural(len(report.sources), 'source')}.",
    ]
    for number, post in enumerate(report.posts[:TOP_STORIES], start=1):
        copies = f", {post.copies} posts" if post.copies > 1 else ""
        when = f"{local_time(post.published_at, zone)} {utc_offset(post.published_at, zone)}"
        lines.append(f"{number}. {_story_title(post)} ({post.source}, {when}{copies})")
        if post.url:
            lines.append(f"   {post.url}")
    if report.posts_link:
        lines.append(f"Alert #{report.alert_id}, every post of the window: {report.posts_link}")
    else:
        lines.append(
            f"Alert #{report.alert_id}. Every post of the window: monitor search --topic {report.topic} "
            f"--since {report.window_start.strftime('%Y-%m-%dT%H:%MZ')}"
        )
    return Notice(title=title, body="\n".join(lines), attachments=((CHART_NAME, chart),) if chart else ())


def health_notice(report: emails.HealthReport) -> Notice:
    body = emails.health_email(report)
    if report.state == "recovered":
        text = f'Source "{report.source}" works again after {plural(report.failures, "failed poll")}.'
    elif report.failures == 0:
        text = f'Source "{report.source}" answers but yields nothing usable: {report.last_error or "unknown"}'
    else:
        text = (
            f'Source "{report.source}" has failed {plural(report.failures, "poll")} in a row. '
            f"Last error: {report.last_error or 'unknown'}"
        )
    link = (
        f"Health alert #{report.alert_id}, its failed requests: {report.link}"
        if report.link
        else f"Health alert #{report.alert_id}. Check it with: monitor status; monitor check --probe"
    )
    return Notice(title=body.subject, body=f"{text}\n{link}")


def digest_notice(report: emails.DigestReport) -> Notice:
    title = emails.digest_email(report).subject
    lines = [f"Daily digest for the 24 hours up to {report.day} ({report.zone_name}):"]
    lines += [
        f"- {t.topic}: {plural(t.mentions_24h, 'mention')}, {plural(t.stories_24h, 'story', 'stories')} "
        f"(7-day average {t.mentions_week_per_day:.1f} a day)"
        for t in report.topics
    ]
    lines.append(f"{plural(len(report.alerts), 'alert')} raised; {plural(len(report.failing), 'source')} failing.")
    if report.link:
        lines.append(f"Latest matches: {report.link}")
    return Notice(title=title, body="\n".join(lines))


def test_notice(channel: str, now: datetime, config_path: str | None) -> Notice:
    """`monitor notify --test`: says where it comes from, so a recipient knows it is not an alert."""
    where = f" (config {config_path})" if config_path else ""
    return Notice(
        title="[monitor] test message",
        body=(
            f"A test message from monitor{where} to the channel {channel!r}, sent {now:%Y-%m-%d %H:%M} UTC. "
            "Alerts routed to this channel will arrive here. This is not an alert."
        ),
    )
