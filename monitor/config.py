"""`config.yaml` -> a validated, frozen `Config`, or a `ConfigError` listing every problem with its location.

Pure apart from reading the one file in `load_config`: no network, no environment lookups (secrets are
named here and read where they are used). Locations look like `sources[2].url (line 14): ...`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from monitor import __version__
from monitor.exceptions import ConfigError
from monitor.match import term_problem
from monitor.schema import Before, InvalidError, Parse, Section, validate
from monitor.types import StoreURL, TopicSpec
from monitor.units import parse_duration, parse_size
from monitor.yamldoc import read_yaml
from monitor.yamldoc import where as _where

S = TypeVar("S", bound=Section)
DEFAULT_USER_AGENT = f"monitor/{__version__} (public media monitor; set defaults.user_agent to your contact)"
SOURCE_NAME = re.compile(r"^[a-z0-9_-]+$")
# Below this interval a public host may see the poller as abusive: accepted, with a warning.
POLITE_INTERVAL = timedelta(seconds=60)

Duration = Annotated[timedelta, Parse(parse_duration)]
Size = Annotated[int, Parse(parse_size)]


def _timezone_name(value: object) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as UTC or Asia/Almaty)") from None
    return str(value)


TimeZoneName = Annotated[str, Parse(_timezone_name)]


def _source_name(value: object) -> str:
    """A source's name, and a notify channel's: what rows and logs name it by."""
    if not isinstance(value, str) or not SOURCE_NAME.match(value):
        raise ValueError(f"{value!r}: use lower-case letters, digits, '-' and '_' only")
    return value


def _source_url(value: object) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value.strip(), re.IGNORECASE):
        raise ValueError(f"{value!r} is not an http(s) address")
    return value.strip()


SourceName = Annotated[str, Parse(_source_name)]
SourceURL = Annotated[str, Parse(_source_url)]
PerHost = Annotated[int, msgspec.Meta(ge=1, le=32)]


class Defaults(Section, frozen=True, kw_only=True):
    interval: Duration = timedelta(minutes=15)
    timeout: Duration = timedelta(seconds=30)
    max_bytes: Size = 10_000_000
    per_host: PerHost = 2
    user_agent: str = DEFAULT_USER_AGENT
    robots: bool = True
    # Redirects to, and addresses of, private and loopback hosts are followed by default: the operator
    # configures the sources. false refuses them, checked on the address of every connection and redirect.
    allow_private: bool = True


class SourceBase(Section, frozen=True, kw_only=True):
    """Keys every source type accepts; fetch settings fall back to `defaults` (`with_defaults`). A source type
    adds its own keys in a subclass (with `crawls_pages` False for an API, which robots.txt does not govern)."""

    name: SourceName
    type: str
    url: SourceURL | None = None
    interval: Duration
    timeout: Duration
    max_bytes: Size
    user_agent: str
    robots: bool
    allow_private: bool = True  # filled from defaults.allow_private
    enabled: bool = True  # false: kept in the config and the store, not polled
    # Sources of one outlet (a channel and its mirrors, an outlet's regional channels): one voice in campaign
    # alerts. A name like a source's; a mirror may name its main source (`group: tengrinews`).
    group: SourceName | None = None
    crawls_pages: ClassVar[bool] = True  # robots.txt applies by default (API types set False)

    @classmethod
    def with_defaults(cls, data: dict[str, Any], defaults: Defaults) -> dict[str, Any]:
        """The raw mapping of a source with the fetch settings it leaves out taken from `defaults`."""
        filled = dict(data)
        for key in ("interval", "timeout", "max_bytes", "user_agent", "allow_private"):
            filled.setdefault(key, getattr(defaults, key))
        # robots.txt governs crawlers of web pages; an API endpoint is governed by its API terms and
        # rate-limit headers (which the API collectors obey), so API types consult it only on request.
        filled.setdefault("robots", defaults.robots and cls.crawls_pages)
        return filled


# Every source type's model subclasses SourceBase and lives beside its collector (monitor/collectors/<type>.py);
# the registry there (monitor.collectors.SOURCE_TYPES) names them, and `load_config` takes its models.
SourceConfig = SourceBase
SourceSection = Section  # base of a mapping nested in a source (html's `fields`): unknown keys are errors
SourceModels = Mapping[str, type[SourceBase]]  # source type name -> its config model


ALERT_KINDS = ("spike", "campaign", "health", "digest")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EMAIL_ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+")


def _address(value: object) -> str:
    if not isinstance(value, str) or not EMAIL_ADDRESS.fullmatch(value.strip()):
        raise ValueError(f"{value!r} is not an email address")
    return value.strip()


def _alert_kind(value: object) -> str:
    if value not in ALERT_KINDS:
        raise ValueError(f"unknown alert kind {value!r} (kinds: {', '.join(ALERT_KINDS)})")
    return str(value)


def _known_topic(value: object, context: Mapping[str, Any]) -> str:
    """A topic named in routing must be configured (the builder passes the names in the context)."""
    if not isinstance(value, str):
        raise ValueError("a topic name must be text")
    known = context.get("topics")
    if known is not None and value not in known:
        raise ValueError(f"unknown topic {value!r} (known: {', '.join(sorted(known)) or 'none'})")
    return value


def _env_name(value: object) -> str:
    if isinstance(value, str) and "://" in value:
        raise ValueError("give the name of an environment variable that holds the URL, not the URL (it carries tokens)")
    if not isinstance(value, str) or not ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name (letters, digits, '_'; e.g. MONITOR_NOTIFY)")
    return value


def _http_base(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an http(s) address such as http://monitor.internal:8001")
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) address such as http://monitor.internal:8001")
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r}: give the base address only, without ?query or #fragment")
    try:
        parts.port  # noqa: B018  # raises ValueError for a port out of range
    except ValueError:
        raise ValueError(f"{value!r}: the port is not a number from 1 to 65535") from None
    return value.strip().rstrip("/")


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _none_is_empty(value: object) -> object:
    return [] if value is None else value  # `notify:` with nothing under it: no channels


def _not_empty(message: str) -> Before:
    """A list that must hold something: an empty one is rejected with `message`."""

    def check(value: object) -> object:
        if isinstance(value, list) and not value:
            raise ValueError(message)
        return value

    return Before(check)


_ROUTES_SOMETHING = _not_empty("an empty list would route nothing here: list some, or leave the key out for all")


EmailAddress = Annotated[str, Parse(_address)]
AlertKind = Annotated[str, Parse(_alert_kind)]
TopicName = Annotated[str, Parse(_known_topic, context=True)]
EnvName = Annotated[str, Parse(_env_name)]
HttpBase = Annotated[str, Parse(_http_base)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]


class _Routed(Section, frozen=True, kw_only=True):
    """Which alerts a channel takes: `None` is every topic (or kind), a tuple limits it to those."""

    topics: Annotated[tuple[TopicName, ...], _ROUTES_SOMETHING] | None = None
    kinds: Annotated[tuple[AlertKind, ...], _ROUTES_SOMETHING] | None = None


class EmailConfig(_Routed, frozen=True, kw_only=True):
    host: str
    port: Port | None = None  # default by tls: 25, 587 (starttls), 465 (ssl)
    tls: Literal["none", "starttls", "ssl"] = "none"
    username: str | None = None
    password_env: str | None = "MONITOR_SMTP_PASSWORD"
    sender: EmailAddress
    to: Annotated[tuple[EmailAddress, ...], Before(_one_or_many), _not_empty("give at least one address")]
    timeout: Duration = timedelta(seconds=30)

    @property
    def effective_port(self) -> int:
        return self.port or {"none": 25, "starttls": 587, "ssl": 465}[self.tls]


def _channel_name(value: object) -> str:
    value = _source_name(value)  # the same rule: a `deliveries.channel` value
    if value == "email":
        raise ValueError("'email' is the channel of alerts.email; give this one another name")
    return value


ChannelName = Annotated[str, Parse(_channel_name)]


class NotifyChannel(_Routed, frozen=True, kw_only=True):
    """One more channel through Apprise; its URL (with its tokens) is read from the environment where it is used."""

    name: ChannelName  # unique, [a-z0-9_-]; the `deliveries.channel` of its rows
    url_env: EnvName  # the environment variable holding the Apprise URL


class CampaignConfig(Section, frozen=True, kw_only=True):
    """A near-duplicate cluster spread by `min_voices` voices within `within` of its first post is an alert.

    Defaults chosen on bench/campaigns.py (README, "Campaign alerts"): 4 voices within 10 min found every
    generated campaign with 7x fewer false campaigns from wire copy and press releases than 3 within 30 min."""

    min_voices: Annotated[int, msgspec.Meta(ge=2)] = 4  # distinct (source, author) voices
    within: Duration = timedelta(minutes=10)
    topics_only: bool = True  # only clusters with at least one post matching a topic


_DIGEST_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _digest_time(value: object) -> str:
    """HH:MM. YAML reads an unquoted 08:00 as a sexagesimal integer (480): taken back as a time."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return f"{value // 60:02d}:{value % 60:02d}"
    if not isinstance(value, str) or not _DIGEST_TIME.match(value):
        raise ValueError(f"{value!r} is not a time of day such as 08:00")
    return value


Positive = Annotated[int, msgspec.Meta(ge=1)]


class AlertsConfig(Section, frozen=True, kw_only=True):
    window: Duration = timedelta(hours=1)
    baseline: Duration = timedelta(days=7)
    min_count: Positive = 3
    cooldown: Duration = timedelta(hours=6)
    digest: Annotated[str, Parse(_digest_time)] | None = None
    timezone: TimeZoneName = "UTC"
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 8  # delivery tries before an alert is `failed`
    email: EmailConfig | None = None
    notify: Annotated[tuple[NotifyChannel, ...], Before(_none_is_empty)] = ()
    campaign: CampaignConfig | None = CampaignConfig()  # `campaign: null` in the file turns campaign alerts off
    link_base: HttpBase | None = None  # where `monitor serve` runs, no `/` at the end

    def __post_init__(self) -> None:
        if self.baseline < self.window:
            raise ValueError("baseline must be at least as long as window")


class HealthConfig(Section, frozen=True, kw_only=True):
    failures: Positive = 5
    fetch_log: Duration = timedelta(days=90)  # how long the fetch log keeps a request: it would grow without end

    def __post_init__(self) -> None:
        if self.fetch_log < timedelta(days=1):
            raise ValueError("fetch_log must be at least 1d (monitor status reads a source's last request there)")


class Config(Section, frozen=True, kw_only=True):
    """The whole validated configuration. `store` is an absolute path (relative paths are from the config file)
    or a PostgreSQL URL."""

    path: Path | None = None  # the file it was read from
    store: Path | StoreURL
    topics: tuple[TopicSpec, ...]
    sources: tuple[SourceBase, ...]  # each an instance of its type's model
    defaults: Defaults = Defaults()
    alerts: AlertsConfig = AlertsConfig()
    health: HealthConfig = HealthConfig()
    warnings: tuple[str, ...] = ()

    def source(self, name: str) -> SourceBase:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)


TOP_LEVEL_KEYS = ("store", "topics", "sources", "defaults", "alerts", "health")
STORE_URL_SCHEMES = ("postgresql", "postgres")


def store_url_problem(url: str) -> str | None:
    """What is wrong with a `store:` URL (None when it can be used): a password in the file above all."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"not a usable PostgreSQL URL ({exc}), e.g. postgresql://monitor@db.example.org/monitor"
    if parts.password is not None:
        return (
            "the URL holds a password: remove it from the file and set MONITOR_STORE_PASSWORD "
            "(or PGPASSWORD, or ~/.pgpass) instead"
        )
    if "password" in {k.lower() for k, _ in parse_qsl(parts.query)}:
        return "the URL holds a password parameter: set MONITOR_STORE_PASSWORD (or ~/.pgpass) instead"
    return None


def load_config(path: str | Path, *, source_types: SourceModels) -> Config:
    """Read and validate a config file; ConfigError lists every problem with its location.
    `source_types` are the models of the source types there are (monitor.collectors.SOURCE_MODELS)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file (give --config PATH or set MONITOR_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from exc
    return parse_config(text, base_dir=file.resolve().parent, path=file.resolve(), source_types=source_types)


def parse_config(text: str, *, base_dir: Path, path: Path | None = None, source_types: SourceModels) -> Config:
    document = read_yaml(text)
    data = {} if document.data is None else document.data
    if not isinstance(data, dict):
        raise ConfigError("the config file must be a mapping with keys such as topics: and sources:")
    builder = _Builder(data, document.lines, list(document.problems), source_types)
    config = builder.build(base_dir, path)
    if builder.problems:
        raise ConfigError(builder.problems)
    assert config is not None
    return config


class _Builder:
    """Validates section by section so that every problem is reported, each with its location."""

    def __init__(
        self,
        data: dict[str, Any],
        lines: dict[tuple[str | int, ...], int],
        problems: list[str],
        source_types: SourceModels,
    ):
        self.data = data
        self.source_types = source_types
        self.lines = lines
        self.problems = [_bounded(problem) for problem in problems]
        self.warnings: list[str] = []

    def error(self, loc: tuple[str | int, ...], message: str) -> None:
        self.problems.append(f"{_where(loc, self.lines)}: {_bounded(message)}")

    def section(self, model: type[S], key: str, context: Mapping[str, Any] | None = None) -> S | None:
        raw = self.data.get(key)
        try:
            return validate(model, raw if raw is not None else {}, context)
        except InvalidError as exc:
            self._report(exc, (key,))
            return None

    def _report(self, exc: InvalidError, prefix: tuple[str | int, ...]) -> None:
        for loc, message in exc.problems:
            self.error(prefix + loc, message)

    def build(self, base_dir: Path, path: Path | None) -> Config | None:
        for key in self.data:
            if key not in TOP_LEVEL_KEYS:
                self.error((key,), f"unknown key (expected one of: {', '.join(TOP_LEVEL_KEYS)})")
        defaults = self.section(Defaults, "defaults") or Defaults()
        alerts = self.alerts()
        topics = self.topics()
        health = self.section(HealthConfig, "health")
        sources = self.sources(defaults)
        store = self.store(base_dir)
        if self.problems or alerts is None or health is None or store is None:
            return None
        return Config(
            path=path,
            store=store,
            topics=topics,
            sources=sources,
            defaults=defaults,
            alerts=alerts,
            health=health,
            warnings=tuple(self.warnings),
        )

    def alerts(self) -> AlertsConfig | None:
        """The alerts section; topics named in routing must be keys of `topics` (checked when there are any)."""
        raw_topics = self.data.get("topics")
        names = {str(name) for name in raw_topics} if isinstance(raw_topics, dict) and raw_topics else None
        alerts: AlertsConfig | None = self.section(AlertsConfig, "alerts", {"topics": names})
        raw = self.data.get("alerts")
        channels = raw.get("notify") if isinstance(raw, dict) else None
        first: dict[str, int] = {}  # checked on the raw list, so that it is reported with the other problems
        for index, channel in enumerate(channels if isinstance(channels, list) else []):
            name = channel.get("name") if isinstance(channel, dict) else None
            if isinstance(name, str) and name in first:
                where = f"also alerts.notify[{first[name]}]"
                self.error(("alerts", "notify", index, "name"), f"duplicate channel name {name!r} ({where})")
            elif isinstance(name, str):
                first[name] = index
        return alerts

    def store(self, base_dir: Path) -> Path | StoreURL | None:
        raw = self.data.get("store", "storage/monitor.db")
        if not isinstance(raw, str) or not raw.strip():
            self.error(("store",), "expected the path of the SQLite file, e.g. storage/monitor.db")
            return None
        if raw.split(":", 1)[0].lower() in STORE_URL_SCHEMES:
            problem = store_url_problem(raw.strip())
            if problem:
                self.error(("store",), problem)
                return None
            return StoreURL(raw.strip())
        store = Path(raw).expanduser()
        return store if store.is_absolute() else base_dir / store

    def topics(self) -> tuple[TopicSpec, ...]:
        raw = self.data.get("topics")
        if not isinstance(raw, dict) or not raw:
            self.error(("topics",), "expected a mapping of topic name -> terms, with at least one topic")
            return ()
        specs = []
        for name, value in raw.items():
            spec = self.topic(str(name), value)
            if spec is not None:
                specs.append(spec)
        return tuple(specs)

    def topic(self, name: str, value: object) -> TopicSpec | None:
        loc: tuple[str | int, ...] = ("topics", name)
        if not re.fullmatch(r"[\w.-]+", name):
            self.error(loc, "a topic name is letters, digits, '-', '_' or '.'")
        if isinstance(value, list):
            value = {"any": value}
        if not isinstance(value, dict):
            self.error(loc, "expected a list of terms or a mapping with any/all/none lists")
            return None
        groups: dict[str, tuple[str, ...]] = {}
        for key in value:
            if key not in ("any", "all", "none", "transliterate"):
                self.error((*loc, key), "unknown key (expected any, all, none or transliterate)")
        transliterate = value.get("transliterate", False)
        if not isinstance(transliterate, bool):
            self.error((*loc, "transliterate"), "expected true or false")
            transliterate = False
        for group in ("any", "all", "none"):
            terms = value.get(group) or []
            if not isinstance(terms, list):
                self.error((*loc, group), "expected a list of terms")
                terms = []
            for index, term in enumerate(terms):
                problem = term_problem(term) if isinstance(term, str) else "a term must be text"
                if problem:
                    self.error((*loc, group, index), problem)
            groups[group] = tuple(t for t in terms if isinstance(t, str))
        if not groups["any"]:
            self.error((*loc, "any"), "a topic needs at least one term")
        return TopicSpec(
            name=name, any=groups["any"], all=groups["all"], none=groups["none"], transliterate=transliterate
        )

    def sources(self, defaults: Defaults) -> tuple[SourceBase, ...]:
        raw = self.data.get("sources")
        if raw is None:
            self.error(("sources",), "expected a list of sources (each with name, type and url)")
            return ()
        if not isinstance(raw, list):
            self.error(("sources",), "expected a list of sources")
            return ()
        self.duplicate_names(raw)
        result: list[tuple[int, SourceBase]] = []
        for index, item in enumerate(raw):
            loc: tuple[str | int, ...] = ("sources", index)
            if not isinstance(item, dict):
                self.error(loc, "expected a mapping with name, type and url")
                continue
            kind = item.get("type")
            model = self.source_types.get(str(kind)) if kind is not None else None
            if model is None:
                supported = ", ".join(self.source_types)
                what = "a source needs a type" if kind is None else f"unknown source type {kind!r}"
                self.error((*loc, "type"), f"{what} (supported: {supported})")
                continue
            try:
                source = validate(model, model.with_defaults(item, defaults))
            except InvalidError as exc:
                self._report(exc, loc)
                continue
            if source.interval < POLITE_INTERVAL and _public(source.url or "https://t.me/"):
                self.warnings.append(
                    f"{_where((*loc, 'interval'), self.lines)}: {source.interval.total_seconds():g}s is a short "
                    "interval for a public host; it may see this as abuse"
                )
            result.append((index, source))
        self.group_names(result)
        return tuple(source for _, source in result)

    def group_names(self, sources: list[tuple[int, SourceBase]]) -> None:
        """A `group` that names a source must be that source's own group (or it has none): `mirror: {group: main}`
        with `main: {group: other}` would leave the mirror a voice apart from both, which no one meant."""
        group_of = {source.name: source.group for _, source in sources}
        for index, source in sources:
            named = source.group
            if named is None or named == source.name or named not in group_of:
                continue
            theirs = group_of[named]
            if theirs is not None and theirs != named:
                self.error(
                    ("sources", index, "group"),
                    f"{named!r} is the name of a source in group {theirs!r}: write group: {theirs} here too, "
                    "so that both count as one voice",
                )

    def duplicate_names(self, raw: list[Any]) -> None:
        """Names are checked on the raw list, so that a duplicate is reported with every other problem."""
        seen: dict[str, int] = {}
        for index, item in enumerate(raw):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                self.error(("sources", index, "name"), f"duplicate source name {name!r} (also sources[{seen[name]}])")
            else:
                seen[name] = index


MAX_PROBLEM_CHARS = 500  # a problem quotes the value it is about: a pasted page must not make it a page long


def _bounded(message: str) -> str:
    if len(message) <= MAX_PROBLEM_CHARS:
        return message
    return f"{message[: MAX_PROBLEM_CHARS - 40]}... ({len(message):,} characters in all)"


def _public(url: str) -> bool:
    """Whether the address is a public host (not loopback, private or link-local), which fast polling may annoy."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return not (address.is_loopback or address.is_private or address.is_link_local)
