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
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor import __version__
from monitor.exceptions import ConfigError
from monitor.match import term_problem
from monitor.types import TopicSpec
from monitor.units import parse_duration, parse_size

DEFAULT_USER_AGENT = f"monitor/{__version__} (public media monitor; set defaults.user_agent to your contact)"
SOURCE_NAME = re.compile(r"^[a-z0-9_-]+$")
# Below this interval a public host may see the poller as abusive: accepted, with a warning.
POLITE_INTERVAL = timedelta(seconds=60)

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


def _timezone_name(value: object) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as UTC or Asia/Almaty)") from None
    return str(value)


TimeZoneName = Annotated[str, BeforeValidator(_timezone_name)]


class _Strict(BaseModel):
    """Unknown keys are errors: a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    interval: Duration = timedelta(minutes=15)
    timeout: Duration = timedelta(seconds=30)
    max_bytes: Size = 10_000_000
    per_host: int = Field(default=2, ge=1, le=32)
    user_agent: str = DEFAULT_USER_AGENT
    robots: bool = True
    # Redirects to, and addresses of, private and loopback hosts are followed by default: the operator
    # configures the sources. false refuses them, checked on the address of every connection and redirect.
    allow_private: bool = True


class SourceBase(_Strict):
    """Keys every source type accepts; fetch settings fall back to `defaults`. A source type adds its own
    keys in a subclass (with `crawls_pages` False for an API, which robots.txt does not govern)."""

    name: str
    type: str
    url: str | None = None
    interval: Duration
    timeout: Duration
    max_bytes: Size
    user_agent: str
    robots: bool
    allow_private: bool = True  # filled from defaults.allow_private
    enabled: bool = True  # false: kept in the config and the store, not polled
    crawls_pages: ClassVar[bool] = True  # robots.txt applies by default (API types set False)

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        defaults = (info.context or {}).get("defaults")
        if isinstance(data, dict) and isinstance(defaults, Defaults):
            for key in ("interval", "timeout", "max_bytes", "user_agent", "allow_private"):
                data.setdefault(key, getattr(defaults, key))
            # robots.txt governs crawlers of web pages; an API endpoint is governed by its API terms and
            # rate-limit headers (which the API collectors obey), so API types consult it only on request.
            data.setdefault("robots", defaults.robots and cls.crawls_pages)
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SOURCE_NAME.match(value):
            raise ValueError(f"{value!r}: use lower-case letters, digits, '-' and '_' only")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value.strip(), re.IGNORECASE):
            raise ValueError(f"{value!r} is not an http(s) address")
        return value.strip() if value else value


# Every source type's model subclasses SourceBase and lives beside its collector (monitor/collectors/<type>.py);
# the registry there (monitor.collectors.SOURCE_TYPES) names them, and `load_config` takes its models.
SourceConfig = SourceBase
SourceSection = _Strict  # base of a mapping nested in a source (html's `fields`): unknown keys are errors
SourceModels = Mapping[str, type[SourceBase]]  # source type name -> its config model


class EmailConfig(_Strict):
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)  # default by tls: 25, 587 (starttls), 465 (ssl)
    tls: Literal["none", "starttls", "ssl"] = "none"
    username: str | None = None
    password_env: str | None = "MONITOR_SMTP_PASSWORD"
    sender: str
    to: list[str] = Field(min_length=1)
    timeout: Duration = timedelta(seconds=30)

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("sender")
    @classmethod
    def _address(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", value.strip()):
            raise ValueError(f"{value!r} is not an email address")
        return value.strip()

    @property
    def effective_port(self) -> int:
        return self.port or {"none": 25, "starttls": 587, "ssl": 465}[self.tls]


class AlertsConfig(_Strict):
    window: Duration = timedelta(hours=1)
    baseline: Duration = timedelta(days=7)
    min_count: int = Field(default=3, ge=1)
    cooldown: Duration = timedelta(hours=6)
    digest: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: TimeZoneName = "UTC"
    max_attempts: int = Field(default=8, ge=1, le=100)  # delivery tries before an alert is `failed`
    email: EmailConfig | None = None

    @field_validator("digest", mode="before")
    @classmethod
    def _digest_text(cls, value: object) -> object:
        # YAML reads an unquoted 08:00 as a sexagesimal integer (480); take it back as a time.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return f"{value // 60:02d}:{value % 60:02d}"
        return value

    @model_validator(mode="after")
    def _baseline_longer(self) -> AlertsConfig:
        if self.baseline < self.window:
            raise ValueError("baseline must be at least as long as window")
        return self


class HealthConfig(_Strict):
    failures: int = Field(default=5, ge=1)


class Config(_Strict):
    """The whole validated configuration. `store` is absolute (relative paths are from the config file)."""

    path: Path | None = None  # the file it was read from
    store: Path
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
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}YAML syntax error: {problem}") from exc
    lines, problems = _index_lines(root)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the config file must be a mapping with keys such as topics: and sources:")
    builder = _Builder(data, lines, problems, source_types)
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
        self.problems = list(problems)
        self.warnings: list[str] = []

    def error(self, loc: tuple[str | int, ...], message: str) -> None:
        self.problems.append(f"{_where(loc, self.lines)}: {message}")

    def section(self, model: type[BaseModel], key: str, context: Mapping[str, Any] | None = None) -> Any:
        raw = self.data.get(key)
        try:
            return model.model_validate(raw if raw is not None else {}, context=dict(context or {}))
        except ValidationError as exc:
            self._report(exc, (key,))
            return None

    def _report(self, exc: ValidationError, prefix: tuple[str | int, ...]) -> None:
        for err in exc.errors():
            loc = prefix + tuple(err["loc"])
            self.error(loc, _message(err))

    def build(self, base_dir: Path, path: Path | None) -> Config | None:
        for key in self.data:
            if key not in TOP_LEVEL_KEYS:
                self.error((key,), f"unknown key (expected one of: {', '.join(TOP_LEVEL_KEYS)})")
        defaults = self.section(Defaults, "defaults") or Defaults()
        alerts = self.section(AlertsConfig, "alerts")
        health = self.section(HealthConfig, "health")
        topics = self.topics()
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

    def store(self, base_dir: Path) -> Path | None:
        raw = self.data.get("store", "storage/monitor.db")
        if not isinstance(raw, str) or not raw.strip():
            self.error(("store",), "expected the path of the SQLite file, e.g. storage/monitor.db")
            return None
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
        result: list[SourceBase] = []
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
                source = model.model_validate(dict(item), context={"defaults": defaults})
            except ValidationError as exc:
                self._report(exc, loc)
                continue
            if source.interval < POLITE_INTERVAL and _public(source.url or "https://t.me/"):
                self.warnings.append(
                    f"{_where((*loc, 'interval'), self.lines)}: {source.interval.total_seconds():g}s is a short "
                    "interval for a public host; it may see this as abuse"
                )
            result.append(source)
        return tuple(result)

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


def _message(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(err.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _where(loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    for cut in range(len(loc), 0, -1):  # the deepest located ancestor
        if loc[:cut] in lines:
            return f"{text} (line {lines[loc[:cut]]})"
    return text


def _index_lines(root: yaml.Node | None) -> tuple[dict[tuple[str | int, ...], int], list[str]]:
    """Map each key path to its 1-based YAML line; report duplicate keys, which PyYAML would silently drop."""
    lines: dict[tuple[str | int, ...], int] = {}
    problems: list[str] = []

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                lines[(*path, key)] = key_node.start_mark.line + 1
                if key in seen:
                    problems.append(f"{_where((*path, key), lines)}: duplicate key (the later one would win)")
                seen.add(key)
                walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, child in enumerate(node.value):
                walk(child, (*path, index))

    if root is not None:
        walk(root, ())
    return lines, problems
