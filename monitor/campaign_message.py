"""What a campaign alert says: the text once, then the timeline (who posted first, who followed, how fast).

Pure: does no I/O; takes the alert and its cluster's posts as the outbox read them, returns a
`CampaignReport` and renders it as an email (`campaign_email`, text + HTML; `campaign_text` is its text
part) or as a short notice for the notify channels (`campaign_notice`: the text cut short, the first voices
with their links). Scraped text is escaped in the HTML.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from html import escape

from monitor.campaigns import in_order, voice_of
from monitor.emails import local_time, plural, utc_offset
from monitor.notices import Notice
from monitor.types import AlertRow, CampaignDetails, ClusterPost, EmailBody

TEXT_CHARS = 1200  # the shared text is shown once, up to this long
TIMELINE_ROWS = 40  # timeline rows listed (the rest are counted)
NOTICE_ROWS = 5  # timeline rows in a notice
NOTICE_TEXT_CHARS = 200  # the shared text in a notice
CHANGE_WORDS = 8  # words shown per side of a wording change


@dataclass(frozen=True)
class TimelineEntry:
    """One post of the cluster in published order."""

    post: ClusterPost
    voice: str  # `source` or `source / author`
    after: timedelta  # since the cluster's first post
    new_voice: bool  # this voice's first post in the cluster
    change: str | None  # None: the wording of the first post; else what differs (`"old" -> "new"`)
    after_alert: bool  # published after the post that made it a campaign


@dataclass(frozen=True)
class CampaignReport:
    alert_id: int
    topic: str | None
    cluster_id: int
    voices: int  # distinct voices when the threshold was crossed
    crossed_after: timedelta  # from the first post to the crossing post
    first: ClusterPost
    entries: tuple[TimelineEntry, ...]
    total_voices: int  # distinct voices among all the posts read
    changed: int  # posts whose wording differs from the first post's
    zone: tzinfo
    zone_name: str
    link: str | None = None  # the cluster's posts in `monitor serve` (with `alerts.link_base`)


def voice_label(post: ClusterPost) -> str:
    return f"{post.source} / {post.author.strip()}" if post.author and post.author.strip() else post.source


def wording_change(first: ClusterPost, other: ClusterPost) -> str | None:
    """None when `other` carries the first post's wording; else the first differing passage, in words."""
    if other.content_hash == first.content_hash:
        return None
    old, new = f"{first.title} {first.text}".split(), f"{other.title} {other.text}".split()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        removed = " ".join(old[i1 : min(i2, i1 + CHANGE_WORDS)]) + (" …" if i2 - i1 > CHANGE_WORDS else "")
        added = " ".join(new[j1 : min(j2, j1 + CHANGE_WORDS)]) + (" …" if j2 - j1 > CHANGE_WORDS else "")
        return f'"{removed}" -> "{added}"' if removed and added else f'-"{removed}"' if removed else f'+"{added}"'
    return "formatting only"  # same words, other spacing, case or punctuation


def campaign_report(
    alert: AlertRow,
    posts: Sequence[ClusterPost],
    *,
    zone: tzinfo,
    zone_name: str,
    groups: Mapping[str, str] | None = None,
) -> CampaignReport:
    """The campaign's facts from its alert and its cluster's posts (any order); `groups`: source -> its `group`,
    whose sources are one voice (as the rule counted them)."""
    assert alert.cluster_id is not None and posts, "a campaign alert names a cluster with posts"
    ordered = in_order(posts)
    first = ordered[0]
    details = alert.details if isinstance(alert.details, CampaignDetails) else None
    crossing_at = alert.window_end or ordered[-1].published_at
    crossing_id = details.crossing_post if details else None
    seen: set[tuple[str, str]] = set()
    entries = []
    passed = False
    for post in ordered:
        voice = voice_of(post, groups)
        entries.append(
            TimelineEntry(
                post=post,
                voice=voice_label(post),
                after=post.published_at - first.published_at,
                new_voice=voice not in seen,
                change=wording_change(first, post),
                after_alert=passed or post.published_at > crossing_at,
            )
        )
        seen.add(voice)
        passed = passed or post.id == crossing_id
    return CampaignReport(
        alert_id=alert.id,
        topic=alert.topic,
        cluster_id=alert.cluster_id,
        voices=alert.count or (details.voices if details else len(seen)),
        crossed_after=crossing_at - first.published_at,
        first=first,
        entries=tuple(entries),
        total_voices=len(seen),
        changed=sum(e.change is not None for e in entries),
        zone=zone,
        zone_name=zone_name,
    )


def gap(delta: timedelta) -> str:
    """`+0s`, `+45s`, `+4m10s`, `+2h05m`: time since the first post."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"+{seconds}s"
    if seconds < 3600:
        return f"+{seconds // 60}m{seconds % 60:02d}s"
    return f"+{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def span_words(delta: timedelta) -> str:
    """`40 s`, `4 min`, `1 h 05 min`: how fast, for the subject and the summary."""
    seconds = max(0, round(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def campaign_subject(report: CampaignReport) -> str:
    """Short: a subject longer than a header line is folded, and some readers then show it oddly."""
    topic = f"{report.topic}: " if report.topic else ""
    return f"[monitor] {topic}campaign, same text from {report.voices} voices in {span_words(report.crossed_after)}"


def _wording_line(report: CampaignReport) -> str:
    if not report.changed:
        return f"Wording: every one of the {plural(len(report.entries), 'post')} carries the same text."
    return (
        f"Wording: changed along the way in {report.changed} of {plural(len(report.entries), 'post')} "
        "(each change is shown below)."
    )


def _shown_text(post: ClusterPost) -> str:
    body = " ".join(post.text.split())
    body = body if len(body) <= TEXT_CHARS else body[:TEXT_CHARS].rstrip() + " …"
    return "\n".join(part for part in (post.title.strip(), body) if part)


def campaign_lines(report: CampaignReport) -> list[str]:
    """The message as plain-text lines (the email's text part; other channels send the same)."""
    zone, first = report.zone, report.first
    offset = utc_offset(first.published_at, zone)
    lines = [
        f"SUMMARY: {report.voices} distinct voices posted the same text within {span_words(report.crossed_after)} "
        f"of its first post ({local_time(first.published_at, zone)} {offset}), cluster {report.cluster_id}"
        + (f", topic {report.topic}." if report.topic else "."),
        f"First: {voice_label(first)}. So far {plural(len(report.entries), 'post')} "
        f"from {plural(report.total_voices, 'voice')}.",
        _wording_line(report),
        "",
        "THE TEXT (as first posted)",
        _shown_text(first),
        "",
        f"TIMELINE ({offset}; + time since the first post)",
    ]
    marked = False
    for number, entry in enumerate(report.entries[:TIMELINE_ROWS], start=1):
        if entry.after_alert and not marked:
            lines.append("   -- threshold reached here (the alert); later posts:")
            marked = True
        role = "first" if number == 1 else "followed" if entry.new_voice else "again"
        lines.append(
            f"{number:>2}. {local_time(entry.post.published_at, zone)} {gap(entry.after):>8}  {role:<8} {entry.voice}"
        )
        if entry.post.url:
            lines.append(f"    {entry.post.url}")
        if entry.change:
            lines.append(f"    wording changed: {entry.change}")
    if len(report.entries) > TIMELINE_ROWS:
        lines.append(f"    ... and {len(report.entries) - TIMELINE_ROWS} more posts")
    lines += [
        "",
        "--",
        f"Campaign alert #{report.alert_id} from monitor: one alert per cluster. All its posts"
        + (f": {report.link}" if report.link else ", in the store:"),
    ]
    if not report.link:
        lines.append(
            f"  SELECT published_at, source, author, url FROM posts WHERE cluster_id = {report.cluster_id} "
            "ORDER BY published_at;"
        )
    return lines


def campaign_text(report: CampaignReport) -> str:
    return "\n".join(campaign_lines(report))


def campaign_email(report: CampaignReport) -> EmailBody:
    subject = campaign_subject(report)
    zone = report.zone
    rows = []
    for number, entry in enumerate(report.entries[:TIMELINE_ROWS], start=1):
        role = "first" if number == 1 else "followed" if entry.new_voice else "again"
        link = (
            f'<a href="{escape(entry.post.url)}">{escape(entry.voice)}</a>' if entry.post.url else escape(entry.voice)
        )
        change = f"<br><small>wording changed: {escape(entry.change)}</small>" if entry.change else ""
        style = ' style="color:#7b8794"' if entry.after_alert else ""
        rows.append(
            f"<tr{style}><td>{escape(local_time(entry.post.published_at, zone))}</td><td>{gap(entry.after)}</td>"
            f"<td>{role}</td><td>{link}{change}</td></tr>"
        )
    lines = campaign_lines(report)
    html = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(subject)}</title></head>'
        f'<body style="font-family:Helvetica,Arial,sans-serif;color:#1f2933;max-width:760px">'
        f"<h2>{escape(subject)}</h2><p>{escape(lines[0].removeprefix('SUMMARY: '))}<br>{escape(lines[1])}<br>"
        f"{escape(lines[2])}</p>"
        f'<blockquote style="white-space:pre-line;border-left:3px solid #cbd2d9;padding-left:10px">'
        f"{escape(_shown_text(report.first))}</blockquote>"
        f"<table cellpadding=4><tr><th>time ({escape(utc_offset(report.first.published_at, zone))})</th>"
        f"<th>after</th><th></th><th>voice</th></tr>{''.join(rows)}</table>"
        + (
            f"<p>... and {len(report.entries) - TIMELINE_ROWS} more posts</p>"
            if len(report.entries) > TIMELINE_ROWS
            else ""
        )
        + f'<p style="font-size:12px;color:#52606d">Campaign alert #{report.alert_id} from monitor '
        f"(cluster {report.cluster_id}; greyed rows came after the alert).</p></body></html>"
    )
    return EmailBody(subject=subject, text="\n".join(lines), html=html)


def campaign_notice(report: CampaignReport) -> Notice:
    """The chat-sized message: the summary, the text cut short, the first voices with their links."""
    zone, first = report.zone, report.first
    text = " ".join(f"{first.title} {first.text}".split())
    text = text if len(text) <= NOTICE_TEXT_CHARS else text[: NOTICE_TEXT_CHARS - 1].rstrip() + "…"
    lines = [
        f"{report.voices} voices posted the same text within {span_words(report.crossed_after)} "
        f"({local_time(first.published_at, zone)} {utc_offset(first.published_at, zone)}); "
        f"{plural(len(report.entries), 'post')} from {plural(report.total_voices, 'voice')} so far"
        + (f", wording changed in {report.changed}." if report.changed else ", all the same wording."),
        f'"{text}"',
    ]
    for number, entry in enumerate(report.entries[:NOTICE_ROWS], start=1):
        role = "first" if number == 1 else "followed" if entry.new_voice else "again"
        lines.append(f"{gap(entry.after)} {role} {entry.voice}" + (f" {entry.post.url}" if entry.post.url else ""))
    if len(report.entries) > NOTICE_ROWS:
        lines.append(f"... and {len(report.entries) - NOTICE_ROWS} more posts")
    lines.append(
        f"Campaign alert #{report.alert_id}, all its posts: {report.link}"
        if report.link
        else f"Campaign alert #{report.alert_id} (cluster {report.cluster_id}): monitor alerts --kind campaign"
    )
    return Notice(title=campaign_subject(report), body="\n".join(lines))
