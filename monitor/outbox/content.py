"""Content: what an alert's message says, read from the store and built by the pure report, email and notice
modules, once per alert for every channel (`Told`: the email, and the notice for the notify channels).

The spike's chart is drawn from `chartdata`, the same bucket counts and detector band as `monitor plot`; it is
the email's inline image and the notices' attachment. With `alerts.link_base` both link into Datasette.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from datetime import datetime, timedelta
from pathlib import PurePath
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from monitor import campaign_message, campaigns, emails, notices, reports
from monitor.alerts import detector_params
from monitor.chartdata import bucket_grid, chart_data
from monitor.config import Config
from monitor.exceptions import MonitorError
from monitor.links import AlertLinks, alert_links, database_name
from monitor.outbox.channels import Told
from monitor.store import PostFilter, Store
from monitor.types import AlertKind, AlertRow, DigestDetails, EmailBody
from monitor.units import from_iso

log = logging.getLogger("monitor.outbox")

CHART_SPAN = timedelta(days=7)
KEPT = 32  # alerts whose messages are kept, so that every channel sends what was built once


class Content:
    """Builds each alert's email body (text, HTML, the inline chart) for one config and store."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.params = detector_params(config)
        self.zone = ZoneInfo(config.alerts.timezone)
        self.zone_name = config.alerts.timezone
        self.database = database_name(_store_name(config))
        self._told: OrderedDict[int, Told] = OrderedDict()

    def tell(self, alert: AlertRow, now: datetime) -> Told:
        """The alert's email and notice, built once (cached for the next channels). Raises MonitorError when the
        alert cannot be told (an unknown kind)."""
        if alert.id in self._told:
            return self._told[alert.id]
        links = alert_links(self.config.alerts.link_base, self.database, alert)
        if alert.kind is AlertKind.SPIKE:
            told = self.spike(alert, links)
        elif alert.kind is AlertKind.HEALTH:
            health = dataclasses.replace(self.health_report(alert), link=links.posts if links else None)
            told = Told(emails.health_email(health), notices.health_notice(health))
        elif alert.kind is AlertKind.DIGEST:
            digest = dataclasses.replace(self.digest_report(alert, now), link=links.posts if links else None)
            told = Told(emails.digest_email(digest), notices.digest_notice(digest))
        elif alert.kind is AlertKind.CAMPAIGN:
            campaign = dataclasses.replace(self.campaign_report(alert), link=links.posts if links else None)
            told = Told(campaign_message.campaign_email(campaign), campaign_message.campaign_notice(campaign))
        else:
            raise MonitorError(f"no message for alerts of kind {alert.kind.value!r} in this version")
        self._told[alert.id] = told
        while len(self._told) > KEPT:
            self._told.popitem(last=False)
        return told

    def body(self, alert: AlertRow, now: datetime) -> EmailBody:
        """The alert's email. Raises MonitorError when the alert cannot be told (an unknown kind)."""
        return self.tell(alert, now).email

    def spike(self, alert: AlertRow, links: AlertLinks | None = None) -> Told:
        assert alert.topic and alert.window_start and alert.window_end, "a spike alert has a topic and a window"
        posts = self.store.window_posts(alert.topic, alert.window_start, alert.window_end)
        chart = self.chart(alert)
        report = reports.spike_report(
            alert,
            posts,
            baseline=self.params.baseline,
            zone=self.zone,
            zone_name=self.zone_name,
            has_chart=chart is not None,
        )
        if links is not None:
            report = dataclasses.replace(report, posts_link=links.posts, alert_link=links.alert)
        body = emails.spike_email(report)
        email = EmailBody(body.subject, body.text, body.html, ((emails.CHART_CID, chart),) if chart else ())
        return Told(email, notices.spike_notice(report, chart))

    def chart(self, alert: AlertRow) -> bytes | None:
        """The topic's posts per hour over the last 7 days with the detector's band; None if it cannot be drawn."""
        assert alert.topic and alert.window_start and alert.window_end
        end = alert.window_end
        grid = bucket_grid(end - CHART_SPAN, end, by="hour", zone=self.zone, baseline=self.params.baseline)
        rows = self.store.stats(PostFilter(topics=(alert.topic,), since=grid.edges[0], until=end), by="hour")
        hourly = {alert.topic: [(from_iso(r.bucket), r.posts) for r in rows]}
        earlier = [
            a.window_end or a.created_at for a in self.store.spike_alerts_between((alert.topic,), grid.start, end)
        ]
        data = chart_data(hourly, {alert.topic: earlier}, grid, self.params, zone=self.zone, zone_name=self.zone_name)
        from monitor.charts import activity_chart  # noqa: PLC0415  # matplotlib (~35 MB) only when mailing

        try:
            return activity_chart(
                data.series,
                bucket=grid.bucket,
                zone=self.zone,
                title=f"{alert.topic}: posts per hour, last 7 days",
                window=(alert.window_start, alert.window_end),
                bands=data.band,
                marks=data.alerts,
                span=(grid.start, grid.end),
            )
        except (ValueError, RuntimeError, OverflowError) as exc:  # a chart must never block the alert
            log.warning("chart_failed alert=%d error=%r", alert.id, str(exc))
            return None

    def campaign_report(self, alert: AlertRow) -> campaign_message.CampaignReport:
        """Raises MonitorError when the cluster has no posts left (deleted from the store by hand)."""
        assert alert.cluster_id is not None, "a campaign alert names its cluster"
        posts = self.store.cluster_posts(alert.cluster_id)
        if not posts:
            raise MonitorError(f"cluster {alert.cluster_id} of campaign alert #{alert.id} has no posts in the store")
        return campaign_message.campaign_report(
            alert, posts, zone=self.zone, zone_name=self.zone_name, groups=campaigns.source_groups(self.config)
        )

    def health_report(self, alert: AlertRow) -> emails.HealthReport:
        assert alert.source, "a health alert names its source"
        try:
            url = self.config.source(alert.source).url
        except KeyError:
            url = None
        return reports.health_report(alert, self.store.source_state(alert.source), url=url, zone=self.zone)

    def digest_report(self, alert: AlertRow, now: datetime) -> emails.DigestReport:
        end = alert.window_end or now
        day_start, week_start = end - timedelta(days=1), end - timedelta(days=7)
        topics = [
            reports.TopicDay(
                topic=t.name,
                day=self.store.topic_count(t.name, day_start, end),
                week=self.store.topic_count(t.name, week_start, end),
                posts=tuple(self.store.window_posts(t.name, day_start, end)),
            )
            for t in self.config.topics
        ]
        raised = [a for a in self.store.alerts(kind=AlertKind.SPIKE, limit=200) if a.created_at >= day_start]
        day = alert.details.day if isinstance(alert.details, DigestDetails) else end.date().isoformat()
        return reports.digest_report(
            day, topics, raised, self.store.source_states(), zone=self.zone, zone_name=self.zone_name
        )


def _store_name(config: Config) -> PurePath:
    """The store as Datasette names it: a SQLite file's stem, or a PostgreSQL store's database name."""
    if isinstance(config.store, PurePath):
        return config.store
    return PurePath(urlsplit(config.store.url).path.strip("/") or "monitor")
