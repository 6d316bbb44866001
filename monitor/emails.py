"""What an alert email says: spike, health and digest emails as text + HTML (`EmailBody`).

Pure: does no I/O; takes the facts an analyst needs to judge the alert without opening anything else,
returns the email's content. Every scraped string is HTML-escaped in the HTML part.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from html import escape

from monitor.types import EmailBody
from monitor.units import format_duration

CHART_CID = "chart@monitor"
SNIPPET_CHARS = 240
_APOSTROPHES = "'’‘ʼ`´′"


@dataclass(frozen=True)
class AlertPost:
    """One story in the email: its first post in the window, and how many copies carried it."""

    source: str
    published_at: datetime
    title: str
    text: str
    url: str | None
    term: str | None  # the configured term that matched (for highlighting)
    copies: int = 1  # posts in the window sharing this post's cluster (itself included)
    copy_sources: tuple[str, ...] = ()  # other sources among those copies


@dataclass(frozen=True)
class SpikeReport:
    alert_id: int
    topic: str
    count: int
    expected: float
    score: float
    window_start: datetime
    window_end: datetime
    baseline: timedelta
    mentions: int  # matching posts in the window
    stories: int  # distinct clusters among them
    sources: tuple[tuple[str, int], ...]  # (source, posts in the window), most first
    posts: tuple[AlertPost, ...]  # top stories
    zone: tzinfo
    zone_name: str
    has_chart: bool = False
    posts_link: str | None = None  # the window's posts in Datasette (alerts.link_base); None: name the command
    alert_link: str | None = None  # the alert's row in Datasette


@dataclass(frozen=True)
class HealthReport:
    alert_id: int
    source: str
    source_type: str
    state: str  # broken | recovered
    failures: int  # broken: failed polls in a row so far; recovered: failed polls in a row before it worked again
    last_error: str | None
    last_ok_at: datetime | None
    since: datetime | None  # first failure of that run of failures
    url: str | None
    zone: tzinfo
    link: str | None = None  # the source's failed requests in Datasette (alerts.link_base)


@dataclass(frozen=True)
class DigestTopic:
    topic: str
    mentions_24h: int
    stories_24h: int
    mentions_week_per_day: float
    stories_week_per_day: float
    top: tuple[AlertPost, ...]


@dataclass(frozen=True)
class DigestReport:
    day: str  # the local date the digest covers up to
    topics: tuple[DigestTopic, ...]
    alerts: tuple[str, ...]  # one line per alert raised in the last 24 h
    failing: tuple[tuple[str, int, str], ...]  # (source, consecutive failures, last error)
    zone: tzinfo
    zone_name: str
    link: str | None = None  # the latest matches in Datasette (alerts.link_base)


# ------------------------------------------------------------------------------------------ helpers
def window_phrase(window: timedelta) -> str:
    """`the last hour`, `the last 2 hours`, `the last 30 minutes`, `the last day`."""
    seconds = int(window.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"the last {unit}" if count == 1 else f"the last {count} {unit}s"
    return f"the last {format_duration(window)}"


def spike_subject(topic: str, count: int, expected: float, window: timedelta) -> str:
    noun = "post" if count == 1 else "posts"
    return f"[monitor] {topic}: {count} {noun} in {window_phrase(window)} (expected {expected:.1f})"


def human_duration(delta: timedelta) -> str:
    """`hour`, `2 hours`, `7 days`, `30 minutes`: for sentences such as "per hour over the previous 7 days"."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return format_duration(delta)


def plural(count: int, noun: str, many: str | None = None) -> str:
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def local_time(when: datetime, zone: tzinfo) -> str:
    moment = when.astimezone(zone)
    return f"{moment:%Y-%m-%d %H:%M}"


def utc_offset(when: datetime, zone: tzinfo) -> str:
    offset = when.astimezone(zone).strftime("%z") or "+0000"
    hours, minutes = offset[:3], offset[3:]
    return "UTC" if offset in ("+0000", "-0000") else f"UTC{hours}" + (f":{minutes}" if minutes != "00" else "")


def term_pattern(term: str) -> re.Pattern[str] | None:
    """A display-only regex for a configured term (highlighting), mirroring the term syntax loosely."""
    words = [w for w in re.split(rf"[^\w*{_APOSTROPHES}]+", term) if w.strip("*")]
    if not words:
        return None
    parts = []
    for word in words:
        prefix = word.endswith("*")
        core = re.escape(word.rstrip("*"))
        core = re.sub(rf"[{_APOSTROPHES}]", f"[{_APOSTROPHES}]", core)
        core = "".join("[еёЕЁ]" if ch in "еёЕЁ" else ch for ch in core)  # Russian writers often type е for ё
        parts.append(core + (r"\w*" if prefix else ""))
    return re.compile(r"(?<!\w)" + r"[\W_]+".join(parts) + r"(?!\w)", re.IGNORECASE)


def snippet(text: str, term: str | None, limit: int = SNIPPET_CHARS) -> tuple[str, str, str]:
    """(before, match, after) around the term's first occurrence, trimmed to about `limit` characters."""
    flat = " ".join(text.split())
    pattern = term_pattern(term) if term else None
    found = pattern.search(flat) if pattern else None
    if found is None:
        cut = flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0] + " …"
        return cut, "", ""
    start, end = found.span()
    room = max(limit - (end - start), 40)
    left = max(0, start - room // 2)
    right = min(len(flat), end + room - (start - left))
    before = ("… " if left > 0 else "") + flat[left:start]
    after = flat[end:right] + (" …" if right < len(flat) else "")
    return before, flat[start:end], after


def _post_snippet(post: AlertPost) -> tuple[str, str, str]:
    body = post.text or post.title
    before, match, after = snippet(body, post.term)
    if not match and post.term:
        title_match = snippet(post.title, post.term)
        if title_match[1]:
            return snippet(body, None)  # the term is in the title: show the start of the text
    return before, match, after


def _minute(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%MZ")


def _title(post: AlertPost) -> str:
    """A title on one line (scraped titles may carry line breaks, or attempts at header-like lines); a post
    without one (a Telegram message, a comment) is named by the start of its text."""
    title = " ".join(post.title.split())
    if title:
        return title
    words = " ".join(post.text.split())
    return (words if len(words) <= 70 else words[:70].rsplit(" ", 1)[0] + " …") or "(no text)"


def _copies_line(post: AlertPost) -> str:
    if post.copies <= 1:
        return ""
    others = f" ({', '.join(post.copy_sources)})" if post.copy_sources else ""
    return f"{post.copies} posts carried this story{others}"


# ------------------------------------------------------------------------------------------ spike
def _window_pointer(report: SpikeReport) -> list[str]:
    """Where the window's posts are: a link into Datasette with `alerts.link_base`, else the command."""
    if report.posts_link:
        return [f"Every post of the window: {report.posts_link}"] + (
            [f"The alert: {report.alert_link}"] if report.alert_link else []
        )
    return [f"Every post of the window: monitor search --topic {report.topic} --since {_minute(report.window_start)}"]


def _window_pointer_html(report: SpikeReport) -> str:
    if report.posts_link:
        alert = f' · <a href="{escape(report.alert_link)}">the alert</a>' if report.alert_link else ""
        return f'<a href="{escape(report.posts_link)}">Every post of the window</a>{alert}'
    return (
        "Every post of the window:\n<code>monitor search --topic "
        f"{escape(report.topic)} --since {escape(_minute(report.window_start))}</code>"
    )


def spike_email(report: SpikeReport) -> EmailBody:
    window = report.window_end - report.window_start
    subject = spike_subject(report.topic, report.count, report.expected, window)
    zone = report.zone
    offset = utc_offset(report.window_end, zone)
    span = f"{local_time(report.window_start, zone)} – {local_time(report.window_end, zone)[-5:]} {offset}"
    ratio = report.count / report.expected if report.expected > 0 else None
    how_unusual = (
        f"{ratio:.0f}x the usual {report.expected:.1f}"
        if ratio and ratio >= 2
        else f"against a usual {report.expected:.1f}"
    )
    sources_text = ", ".join(f"{name} ({n})" for name, n in report.sources)
    summary = (
        f"SUMMARY: {report.topic} - {report.count} posts in {window_phrase(window)} "
        f"(expected {report.expected:.1f}, score {report.score:.1f}); "
        f"{plural(report.stories, 'distinct story', 'distinct stories')}; "
        f"{plural(len(report.sources), 'source')}: {', '.join(f'{s} {n}' for s, n in report.sources)}."
    )
    lines = [
        summary,
        "",
        f'Topic "{report.topic}": {report.count} matching posts between {span}, {how_unusual} per '
        f"{human_duration(window)} over the previous {human_duration(report.baseline)}.",
        f"{report.stories} distinct {'story' if report.stories == 1 else 'stories'} among {report.mentions} "
        f"mentions (near-identical copies counted once).",
        f"Sources: {sources_text}.",
        "",
        "TOP STORIES",
    ]
    for number, post in enumerate(report.posts, start=1):
        before, match, after = _post_snippet(post)
        lines.append(f"{number}. [{post.source}] {local_time(post.published_at, zone)} {offset}  {_title(post)}")
        text = f"{before}*{match}*{after}" if match else before
        if text:
            lines.append(f"   {text}")
        if post.url:
            lines.append(f"   {post.url}")
        if copies := _copies_line(post):
            lines.append(f"   {copies}")
        lines.append("")
    lines += [
        "--",
        f"Alert #{report.alert_id} from monitor. The chart (7 days, posts per hour) is attached.",
        *_window_pointer(report),
    ]
    return EmailBody(
        subject=subject, text="\n".join(lines), html=_spike_html(report, subject, span, how_unusual, summary)
    )


def _spike_html(report: SpikeReport, subject: str, span: str, how_unusual: str, summary: str) -> str:
    zone = report.zone
    offset = utc_offset(report.window_end, zone)
    window = report.window_end - report.window_start
    rows = []
    for post in report.posts:
        before, match, after = _post_snippet(post)
        text = (
            escape(before)
            + (f'<mark style="background:#ffe066">{escape(match)}</mark>' if match else "")
            + escape(after)
        )
        title = escape(_title(post))
        if post.url:
            title = f'<a href="{escape(post.url)}">{title}</a>'
        copies = _copies_line(post)
        rows.append(
            '<tr><td style="padding:8px 0;border-top:1px solid #e4e7eb">'
            f'<div style="color:#52606d;font-size:12px">{escape(post.source)} · '
            f"{escape(local_time(post.published_at, zone))} {escape(offset)}</div>"
            f'<div style="font-weight:600;margin:2px 0">{title}</div>'
            f'<div style="font-size:14px;color:#1f2933">{text}</div>'
            + (f'<div style="color:#52606d;font-size:12px;margin-top:2px">{escape(copies)}</div>' if copies else "")
            + "</td></tr>"
        )
    source_items = "".join(f"<li>{escape(name)}: {n}</li>" for name, n in report.sources)
    chart = (
        (
            f'<p><img src="cid:{CHART_CID}" alt="posts per hour over 7 days, the alert window shaded" '
            'width="640" style="max-width:100%"></p>'
        )
        if report.has_chart
        else ""
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(subject)}</title></head>
<body style="font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1f2933;max-width:720px">
<p style="font-size:12px;color:#52606d">{escape(summary)}</p>
<h2 style="margin:4px 0">{escape(report.topic)}: {report.count} posts in {escape(window_phrase(window))}</h2>
<p>{report.count} matching posts between <b>{escape(span)}</b>, {escape(how_unusual)} per
{escape(human_duration(window))} over the previous {escape(human_duration(report.baseline))}
(score {report.score:.1f}).<br>
<b>{report.stories}</b> distinct {"story" if report.stories == 1 else "stories"} among {report.mentions} mentions.</p>
{chart}
<h3 style="margin-bottom:0">Top stories</h3>
<table style="border-collapse:collapse;width:100%">{"".join(rows)}</table>
<h3 style="margin-bottom:0">Sources</h3><ul>{source_items}</ul>
<p style="font-size:12px;color:#52606d">Alert #{report.alert_id} from monitor. {_window_pointer_html(report)}</p>
</body></html>
"""


# ------------------------------------------------------------------------------------------ health
def health_email(report: HealthReport) -> EmailBody:
    zone = report.zone
    if report.state == "recovered":
        subject = f"[monitor] source {report.source} works again"
        headline = f'Source "{report.source}" ({report.source_type}) works again.'
        run = f"It had failed {plural(report.failures, 'poll')} in a row" if report.failures else "It had been failing"
        detail = (
            run
            + (f" since {local_time(report.since, zone)} {utc_offset(report.since, zone)}" if report.since else "")
            + ". Posts published while it was down are collected if the source still lists them."
        )
    elif report.failures == 0:  # it answers, but what it answers no longer fits the config (a changed layout)
        subject = f"[monitor] source {report.source} answers but yields nothing usable"
        headline = f'Source "{report.source}" ({report.source_type}) answers, but: {report.last_error or "unknown"}'
        detail = (
            "The page layout has probably changed: its CSS selectors in the config need updating. Until "
            "then this source adds nothing to the store or the alerts. Check it with `monitor check --probe "
            "--source " + report.source + "`."
        )
    else:
        subject = f"[monitor] source {report.source} is failing ({report.failures} polls in a row)"
        headline = f'Source "{report.source}" ({report.source_type}) has failed {report.failures} polls in a row.'
        last_ok = (
            f"Last success: {local_time(report.last_ok_at, zone)} {utc_offset(report.last_ok_at, zone)}."
            if report.last_ok_at
            else "It has never been polled successfully."
        )
        detail = (
            f"Last error: {report.last_error or 'unknown'}\n{last_ok}\n"
            "Until it works again, nothing from this source reaches the store or the alerts. "
            "Check the address with `monitor check --probe --source " + report.source + "` and `monitor status`."
        )
    text = "\n".join(
        [
            headline,
            "",
            detail,
            "",
            f"Address: {report.url or '-'}",
            *([f"Failed requests: {report.link}"] if report.link else []),
            "--",
            f"Health alert #{report.alert_id} from monitor. You get one email when a source breaks and "
            "one when it recovers.",
        ]
    )
    html = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(subject)}</title></head>'
        f'<body style="font-family:Helvetica,Arial,sans-serif;color:#1f2933;max-width:720px">'
        f'<h2>{escape(headline)}</h2><p style="white-space:pre-line">{escape(detail)}</p>'
        f"<p>Address: {escape(report.url or '-')}</p>"
        + (f'<p><a href="{escape(report.link)}">Failed requests</a></p>' if report.link else "")
        + f'<p style="font-size:12px;color:#52606d">Health alert #{report.alert_id} from monitor.</p></body></html>'
    )
    return EmailBody(subject=subject, text=text, html=html)


# ------------------------------------------------------------------------------------------ digest
def digest_email(report: DigestReport) -> EmailBody:
    subject = f"[monitor] daily digest {report.day}: " + ", ".join(f"{t.topic} {t.mentions_24h}" for t in report.topics)
    lines = [f"Daily digest for the 24 hours up to {report.day} ({report.zone_name}).", ""]
    html_topics = []
    for topic in report.topics:
        lines.append(
            f"{topic.topic}: {topic.mentions_24h} mentions, {topic.stories_24h} stories "
            f"(last 7 days: {topic.mentions_week_per_day:.1f} mentions and "
            f"{topic.stories_week_per_day:.1f} stories per day)"
        )
        items = []
        for post in topic.top:
            lines.append(
                f"  - [{post.source}] {local_time(post.published_at, report.zone)} "
                f"{_title(post)}" + (f"  {post.url}" if post.url else "")
            )
            title = escape(_title(post))
            items.append(
                f"<li>{escape(post.source)} · {escape(local_time(post.published_at, report.zone))} · "
                + (f'<a href="{escape(post.url)}">{title}</a>' if post.url else title)
                + (f" <small>({post.copies} posts)</small>" if post.copies > 1 else "")
                + "</li>"
            )
        lines.append("")
        html_topics.append(
            f'<h3 style="margin-bottom:2px">{escape(topic.topic)}: {topic.mentions_24h} mentions, '
            f'{topic.stories_24h} stories</h3><div style="color:#52606d;font-size:13px">last 7 days: '
            f"{topic.mentions_week_per_day:.1f} mentions and {topic.stories_week_per_day:.1f} stories per day</div>"
            f"<ul>{''.join(items)}</ul>"
        )
    lines.append("Alerts raised in the last 24 hours:" if report.alerts else "No alerts in the last 24 hours.")
    lines += [f"  - {a}" for a in report.alerts]
    lines.append("")
    if report.failing:
        lines.append("Sources failing now:")
        lines += [f"  - {name}: {n} failed polls in a row; {error}" for name, n, error in report.failing]
    else:
        lines.append("Every source answered at its last poll.")
    if report.link:
        lines += ["", f"Latest matches: {report.link}"]
    alerts_html = "".join(f"<li>{escape(a)}</li>" for a in report.alerts) or "<li>none</li>"
    failing_html = (
        "".join(f"<li>{escape(n)}: {k} failed polls; {escape(e)}</li>" for n, k, e in report.failing) or "<li>none</li>"
    )
    html = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(subject)}</title></head>'
        f'<body style="font-family:Helvetica,Arial,sans-serif;color:#1f2933;max-width:720px">'
        f"<h2>Daily digest, {escape(report.day)}</h2>{''.join(html_topics)}"
        f"<h3>Alerts in the last 24 hours</h3><ul>{alerts_html}</ul>"
        f"<h3>Sources failing</h3><ul>{failing_html}</ul>"
        + (f'<p><a href="{escape(report.link)}">Latest matches</a></p>' if report.link else "")
        + "</body></html>"
    )
    return EmailBody(subject=subject, text="\n".join(lines), html=html)


def top_stories(posts: Sequence[AlertPost], limit: int) -> tuple[AlertPost, ...]:
    """Most-carried stories first, then the newest."""
    ranked = sorted(posts, key=lambda p: (-p.copies, -p.published_at.timestamp()))
    return tuple(ranked[:limit])


def test_email(channel: str, now: datetime, config_path: str | None) -> EmailBody:
    """`monitor notify --test`: says where it comes from, so a recipient knows it is not an alert."""
    where = f" (config {config_path})" if config_path else ""
    text = (
        f"A test message from monitor{where} to the channel {channel!r}, sent {now:%Y-%m-%d %H:%M} UTC.\n"
        "Alerts routed to this channel will arrive here. This is not an alert."
    )
    html = (
        '<!doctype html><html><head><meta charset="utf-8"><title>[monitor] test message</title></head>'
        f"<body><p>{escape(text)}</p></body></html>"
    )
    return EmailBody(subject="[monitor] test message", text=text, html=html)
