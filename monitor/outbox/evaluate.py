"""Evaluate: which spike, campaign, health and digest alerts are due now, written to the outbox with their
deliveries (one per channel whose topics and kinds take the alert: `delivery.channels_for`).

Reads the store (bucket counts counted in SQL, fresh near-duplicate clusters, source states, the last alert of
each kind), asks the pure decisions in `monitor.alerts` and `monitor.campaigns`, and inserts what they return;
each insert returns its row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from monitor import alerts as decide
from monitor import campaigns, delivery
from monitor.config import Config
from monitor.store import Store
from monitor.types import AlertKind, AlertRow, ClusterPost, DigestDetails, HealthDetails, NewAlert

log = logging.getLogger("monitor.outbox")


class Evaluator:
    """Raises the alerts that are due for one config and store; each new alert gets a delivery per channel that
    takes it (with no channel configured it waits, pending, for one; with channels but none taking it, it is
    recorded as routed to no channel)."""

    def __init__(self, config: Config, store: Store, routes: Sequence[delivery.Route]) -> None:
        self.config = config
        self.store = store
        self.routes = tuple(routes)
        self.params = decide.detector_params(config)
        self.zone = ZoneInfo(config.alerts.timezone)
        self.campaign_rule = campaigns.rule_of(config)

    def evaluate(self, now: datetime, *, topics: Sequence[str] | None = None) -> list[AlertRow]:
        """Add the spike (of `topics`, default all), campaign, health and digest alerts due now; returns new rows."""
        found = self._spikes(now, topics) + self._campaigns(now) + self._health(now) + self._digest(now)
        created = [
            self.store.insert_alert(
                a,
                created_at=now,
                channels=delivery.channels_for(self.routes, a.kind.value, a.topic),
                unrouted=delivery.UNROUTED if self.routes else None,
            )
            for a in found
        ]
        for row in created:
            log.info(
                "alert_raised id=%d kind=%s topic=%s source=%s cluster=%s count=%s expected=%s",
                row.id,
                row.kind.value,
                row.topic,
                row.source,
                row.cluster_id,
                row.count,
                row.expected,
            )
        return created

    def _spikes(self, now: datetime, topics: Sequence[str] | None) -> list[NewAlert]:
        names = list(topics) if topics is not None else [t.name for t in self.config.topics]
        step, buckets = self.params.step, self.params.buckets
        series = {name: self.store.topic_counts(name, now, step, buckets) for name in names}
        last = {}
        for name in names:
            previous = self.store.last_alert(AlertKind.SPIKE, topic=name)
            last[name] = previous.created_at if previous else None
        return decide.spike_alerts(series, last, self.params)

    def _campaigns(self, now: datetime) -> list[NewAlert]:
        rule = self.campaign_rule
        if rule is None:
            return []
        posts = self.store.fresh_clusters(
            campaigns.candidates_since(now, rule), min_voices=rule.min_voices, topics_only=rule.topics_only
        )
        clusters: dict[int, list[ClusterPost]] = {}
        for post in posts:
            clusters.setdefault(post.cluster_id, []).append(post)
        alerted = self.store.campaign_clusters(list(clusters)) if clusters else set()
        return campaigns.campaign_alerts(clusters, alerted, rule, now)

    def _health(self, now: datetime) -> list[NewAlert]:
        configured = {s.name: s.type for s in self.config.sources if s.enabled}
        runs = self.store.failure_runs()
        sources = [
            decide.SourceHealth(
                name=s.name,
                type=configured[s.name],
                failures=s.failures,
                last_error=s.last_error,
                last_ok_at=s.last_ok_at,
                last_error_at=s.last_error_at,
                note=s.health,
                run_failures=runs[s.name].failures if s.name in runs else s.failures,
                failing_since=runs[s.name].since if s.name in runs else None,
            )
            for s in self.store.source_states()
            if s.name in configured
        ]
        last = {}
        for source in sources:
            previous = self.store.last_alert(AlertKind.HEALTH, source=source.name)
            if previous is not None and isinstance(previous.details, HealthDetails):
                last[source.name] = decide.LastHealth(previous.details.state, previous.created_at)
        return decide.health_alerts(
            sources, last, failures=self.config.health.failures, quiet=self.config.alerts.cooldown, now=now
        )

    def _digest(self, now: datetime) -> list[NewAlert]:
        previous = self.store.last_alert(AlertKind.DIGEST)
        last_day = previous.details.day if previous and isinstance(previous.details, DigestDetails) else None
        day = decide.digest_due(self.config.alerts.digest, self.zone, now, last_day)
        return [decide.digest_alert(day, now)] if day else []
