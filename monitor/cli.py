"""The `monitor` command. Exit status: 0 success, 1 runtime failure, 2 usage or config error."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from monitor import __version__
from monitor.exceptions import ConfigError, MonitorError, QueryError, StoreError
from monitor.output import FORMATS, bar, sparkline, write_rows
from monitor.units import parse_when

if TYPE_CHECKING:  # imported where used: `monitor --help` loads no config, store, rich or asyncio
    from rich.text import Text

    from monitor.config import Config
    from monitor.metrics import Listen
    from monitor.store import PostFilter, SourceRow, Store

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("monitor")
_OWN_PROCESS = False  # entry() (the console script, `python -m monitor`) sets it; a caller that imports main does not


def now_utc() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------- logging
class KeyValueJsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event (first word) and the key=value fields."""

    _pair = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)")

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, _, rest = message.partition(" ")
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event,
        }
        for key, value in self._pair.findall(rest):
            payload[key] = value.strip("'\"")
        if record.exc_info:
            payload["traceback"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def setup_logging(level: int, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(KeyValueJsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler", "asyncio", "matplotlib", "PIL", "procrastinate"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


# ---------------------------------------------------------------------------------------------- helpers
def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"monitor: {message}", err=True)
    sys.exit(code)


def get_config(ctx: click.Context) -> Config:
    from monitor.config import load_config

    obj = ctx.ensure_object(dict)
    if "config" not in obj:
        path = obj["config_path"]
        from monitor.collectors import SOURCE_MODELS

        try:
            obj["config"] = load_config(path, source_types=SOURCE_MODELS)
        except ConfigError as exc:
            click.echo(f"monitor: {path}: {len(exc.problems)} problem(s) in the config:", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(EXIT_USAGE)
    config: Config = obj["config"]
    return config


def get_store(ctx: click.Context, *, create: bool = False, readonly: bool = False, one_shot: bool = False) -> Store:
    """The config's store; `readonly` for commands that only read (they work on a store they cannot write);
    `one_shot` for a command that writes once and exits (a smaller page cache: its peak memory)."""
    from monitor.store import open_store

    config = get_config(ctx)
    try:
        return open_store(config.store, create=create, readonly=readonly, one_shot=one_shot)
    except StoreError as exc:
        fail(str(exc))


def _no_store_yet(config: Config) -> bool:
    """A SQLite store whose file does not exist yet (a server's store is asked by opening it)."""
    from monitor.store import store_exists

    return store_exists(config.store) is False


class MonitorGroup(click.Group):
    """Every store failure, in any command, is one line naming the file and what to do, and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QueryError as exc:
            fail(str(exc), EXIT_USAGE)
        except StoreError as exc:
            fail(str(exc))


def when_option(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value, now_utc())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


def fmt_time(value: str | None) -> str:
    """Stored ISO text to a short human form: `2024-03-01 12:05Z`."""
    if not value:
        return ""
    return value.replace("T", " ")[:16] + ("Z" if value.endswith("Z") or "+00:00" in value else "")


@contextlib.contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr when it is a terminal (and the work is long enough to want one); silent when piped."""
    if not sys.stderr.isatty() or total < 2:
        yield lambda _: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total, last="")
        yield lambda name: progress.update(task, advance=1, last=name)


@contextlib.contextmanager
def progress_counter(label: str) -> Iterator[Callable[[int], None] | None]:
    """A running count on stderr when it is a terminal (for work of unknown length); nothing when piped."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}: {task.completed:,}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done: progress.update(task, completed=done)


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output: a table for people, a JSON array or CSV for machines.",
)


# ---------------------------------------------------------------------------------------------- the group
@click.group(cls=MonitorGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--config",
    "config_path",
    envvar="MONITOR_CONFIG",
    default="config.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config file (env MONITOR_CONFIG).",
)
@click.option("-v", "--verbose", count=True, help="More log detail (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors in the log.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="MONITOR_LOG_FORMAT",
    show_default=True,
    help="Log lines as key=value text or one JSON object per line.",
)
@click.version_option(__version__, prog_name="monitor")
@click.pass_context
def main(ctx: click.Context, config_path: Path, verbose: int, quiet: bool, log_format: str) -> None:
    """Watch public media for topics; store every post once in SQLite; email analysts when a topic spikes.

    \b
    Start:    monitor check             validate config.yaml
              monitor poll              poll every source once, now
              monitor run               the daemon (Ctrl-C or SIGTERM stops it)
    Analyse:  monitor search 'сепаратист*'   monitor stats --by day   monitor status
    """
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    setup_logging(level, log_format)
    ctx.ensure_object(dict)["config_path"] = config_path


# ---------------------------------------------------------------------------------------------- check
@main.command()
@click.option("--probe", is_flag=True, help="Also fetch every source once (storing nothing) and report what it holds.")
@click.option("--source", "names", multiple=True, metavar="NAME", help="With --probe: only this source (repeatable).")
@click.option("--store", "check_store", is_flag=True, help="Also check the store file for damage (exit 1 if damaged).")
@format_option
@click.pass_context
def check(ctx: click.Context, probe: bool, names: tuple[str, ...], check_store: bool, fmt: str) -> None:
    """Validate the config: every problem with its location, exit 2 if any.

    With --probe, fetch each source once without storing anything and report, per source: whether it
    answered, items found, how many have dates, the time span they cover and posts per day. With --store,
    run SQLite's consistency check over the whole store (read only; safe while the daemon runs).
    """
    config = get_config(ctx)
    for warning in (*config.warnings, *environment_warnings(config, os.environ)):
        click.echo(f"warning: {warning}", err=True)
    types = sorted({s.type for s in config.sources})
    click.echo(f"config ok: {config.path}", err=fmt != "table")
    click.echo(
        f"  {len(config.topics)} topics ({', '.join(t.name for t in config.topics)}), "
        f"{len(config.sources)} sources ({', '.join(types) or 'none'})",
        err=fmt != "table",
    )
    click.echo(f"  store: {config.store}", err=fmt != "table")
    email = config.alerts.email
    click.echo(
        f"  mail: {'to ' + ', '.join(email.to) + ' via ' + email.host if email else 'off (no alerts.email)'}",
        err=fmt != "table",
    )
    if check_store:
        _check_store(ctx, config, err=fmt != "table")
    if not probe:
        return
    import asyncio

    from monitor.probe import probe_sources

    sources = _select_sources(config, names)
    reports = asyncio.run(probe_sources(config, sources, clock=now_utc))
    write_rows(
        [r.as_row() for r in reports],
        fmt,
        title="probe (nothing stored)",
        columns=["source", "type", "answer", "items", "dated", "oldest", "newest", "per_day", "note"],
    )


def environment_warnings(config: Config, environ: Mapping[str, str]) -> list[str]:
    """Secrets the config names but the environment lacks: valid config, but that part cannot work yet."""
    warnings = []
    for index, source in enumerate(config.sources):
        token_env = getattr(source, "token_env", None)  # the API types that need a token name its variable
        if token_env and not environ.get(token_env, "").strip() and source.enabled:
            warnings.append(
                f"sources[{index}].token_env ({source.name}): {token_env} is not set in the environment; "
                "this source will fail until it is"
            )
    for index, channel in enumerate(config.alerts.notify):
        if not environ.get(channel.url_env, "").strip():
            warnings.append(
                f"alerts.notify[{index}].url_env ({channel.name}): {channel.url_env} is not set in the environment; "
                "this channel cannot send until it is"
            )
    email = config.alerts.email
    if email and email.username and (not email.password_env or email.password_env not in environ):
        warnings.append(
            f"alerts.email.password_env: {email.password_env or '(none)'} is not set in the environment, "
            f"but username {email.username!r} is: the SMTP login will fail"
        )
    return warnings


def _check_store(ctx: click.Context, config: Config, *, err: bool) -> None:
    """`check --store`: PRAGMA quick_check over the store; one line, exit 1 when it is damaged."""
    from monitor.store import BACKUP_ADVICE

    if _no_store_yet(config):
        click.echo(f"  store: none yet at {config.store} (`monitor poll` or `monitor run` creates it)", err=err)
        return
    with get_store(ctx, readonly=True) as store:
        problems = store.check()
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        fail(f"{config.store}: the store is damaged ({shown}): {BACKUP_ADVICE}")
    how = "quick_check found no damage" if isinstance(config.store, Path) else "every table and view is there"
    click.echo(f"  store ok: {config.store} ({how})", err=err)


def _select_sources(config: Config, names: Sequence[str]) -> list[Any]:
    if not names:
        return [s for s in config.sources if s.enabled]
    known = {s.name for s in config.sources}
    unknown = [n for n in names if n not in known]
    if unknown:
        fail(f"no source named {', '.join(unknown)} in the config (known: {', '.join(sorted(known))})", EXIT_USAGE)
    return [config.source(n) for n in names]


# ---------------------------------------------------------------------------------------------- poll / run
@main.command()
@click.option("--source", "names", multiple=True, metavar="NAME", help="Poll only this source (repeatable).")
@format_option
@click.pass_context
def poll(ctx: click.Context, names: tuple[str, ...], fmt: str) -> None:
    """Poll every (or the named) source once now, whatever its interval, then evaluate alerts and send mail.

    Conditional-GET state is kept across runs; a server's Retry-After is respected. Exit status is 0 even
    when some sources failed: the summary says which.
    """
    import asyncio
    import gc

    if _OWN_PROCESS:  # start-up allocates what lives to the end (modules, config): collections during it found
        gc.disable()  # ~0.2 MB of cycles and cost ~25 ms of a re-poll's CPU; a failure here ends the process
    from monitor.service import poll_once

    config = get_config(ctx)
    sources = _select_sources(config, names)
    store = get_store(ctx, create=True, one_shot=True)
    if _OWN_PROCESS:  # start-up's objects (modules, config) live to the end: no collection walks them again
        gc.freeze()
        gc.enable()
    holder = store.daemon_holder()
    if holder is not None:  # the daemon evaluates and mails alerts; a second sender would only race it
        who = f"pid {holder.pid} on {holder.host}" if holder.pid else "a running `monitor run`"
        click.echo(
            f"monitor: a daemon holds this store: polling and storing only; alerts are left to the daemon, {who}",
            err=True,
        )
    try:
        with progress_bar("polling", total=len(sources)) as advance:
            summary = asyncio.run(
                poll_once(
                    config,
                    store,
                    sources,
                    clock=now_utc,
                    on_result=lambda r: advance(r.source),
                    alerts=holder is None,
                )
            )
    except MonitorError as exc:
        fail(str(exc))
    finally:
        store.close()
    rows = [r.as_row() for r in summary.results]
    write_rows(
        rows, fmt, title="poll", columns=["source", "status", "items", "new", "updated", "matches", "ms", "note"]
    )
    if fmt == "table":
        click.echo(summary.headline())
    if _OWN_PROCESS:  # the process ends here, its store closed above: finalising it needs no last pass of the
        gc.freeze()  # collector over every object (a tenth of a re-poll's time went to it)


def _metrics_options(command: Callable[..., None]) -> Callable[..., None]:
    """--metrics and --metrics-public, the same on `monitor run` and `monitor worker`."""
    command = click.option(
        "--metrics-public",
        is_flag=True,
        help="Allow --metrics on a non-loopback address (the figures name every source and topic).",
    )(command)
    return click.option(
        "--metrics",
        "metrics_at",
        metavar="HOST:PORT",
        help="Serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9108; port 0 = any free one). "
        "Off by default.",
    )(command)


@main.command()
@click.option(
    "--role",
    type=click.Choice(["all", "scheduler"]),
    default="all",
    show_default=True,
    help="all: poll, alert and mail in this process. scheduler (PostgreSQL store): queue each due poll for "
    "`monitor worker` processes on any machine (a second scheduler waits as a standby).",
)
@_metrics_options
@click.pass_context
def run(ctx: click.Context, role: str, metrics_at: str | None, metrics_public: bool) -> None:
    """Run the daemon: poll each source on its interval, evaluate alerts, send mail.

    Stops cleanly within 10 s on SIGTERM or SIGINT (exit 0); SIGHUP re-reads the config (a config with
    problems is logged and the running one kept). Logs go to stderr (see --log-format).
    With --role scheduler the polls, alerts and mail are the workers' (see `monitor worker`).
    """
    import asyncio

    from monitor.collectors import SOURCE_MODELS
    from monitor.config import load_config
    from monitor.daemon import run_daemon

    listen = _metrics_address(metrics_at, metrics_public) if metrics_at is not None else None
    config = get_config(ctx)
    for warning in config.warnings:
        log.warning("config_warning %s", warning)
    if role == "scheduler":
        _serve_cluster(ctx, config, "monitor run --role scheduler", lambda store: _scheduler(config, store, listen))
    path = ctx.ensure_object(dict)["config_path"]
    store = get_store(ctx, create=True)

    def reload() -> Config:
        return load_config(path, source_types=SOURCE_MODELS)

    try:
        code = asyncio.run(run_daemon(config, store, clock=now_utc, load=reload, metrics=listen))
    except MonitorError as exc:
        fail(str(exc))
    finally:
        store.close()
    sys.exit(code)


def _metrics_address(value: str, public: bool) -> Listen:
    from monitor.metrics import parse_listen

    try:
        listen = parse_listen(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--metrics") from None
    if not listen.loopback and not public:
        raise click.BadParameter(
            f"{value}: not a loopback address; the metrics name every source and topic: add --metrics-public to "
            "serve them beyond this machine",
            param_hint="--metrics",
        )
    return listen


@main.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="Polls at once in this worker (each host's limit, defaults.per_host, holds across all workers).",
)
@_metrics_options
@click.pass_context
def worker(ctx: click.Context, concurrency: int, metrics_at: str | None, metrics_public: bool) -> None:
    """Run queued polls and alert evaluations (PostgreSQL store; start `monitor run --role scheduler` once).

    Any number of workers, on any machine, with the same config. A source is polled by one worker at a time;
    the jobs of a worker that dies are queued again. SIGTERM or SIGINT: running polls get 5 s to finish (exit 0).
    """
    listen = _metrics_address(metrics_at, metrics_public) if metrics_at is not None else None
    config = get_config(ctx)
    for warning in config.warnings:
        log.warning("config_warning %s", warning)
    _serve_cluster(ctx, config, "monitor worker", lambda store: _worker(config, store, concurrency, listen))


def _serve_cluster(
    ctx: click.Context, config: Config, command: str, body: Callable[[Store], Coroutine[Any, Any, int]]
) -> NoReturn:
    """Run a scheduler or worker `body(store)` on the config's PostgreSQL store; exit 2 on a SQLite store."""
    import asyncio

    try:
        from monitor.scaleout import postgres_store, queue

        postgres_store(config, command)
        del queue  # imported to know here that the task queue is installed
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except ImportError as exc:
        fail(f"{command} needs the task queue: pip install 'monitor[postgres]' ({exc})")
    store = get_store(ctx, create=True)
    try:
        code = asyncio.run(body(store))
    except MonitorError as exc:
        fail(str(exc))
    finally:
        store.close()
    sys.exit(code)


async def _scheduler(config: Config, store: Store, metrics: Listen | None) -> int:
    from monitor.scaleout.scheduler import run_scheduler
    from monitor.store import cluster_store

    cluster = cluster_store(store)
    assert cluster is not None  # _serve_cluster checked the store is PostgreSQL
    return await run_scheduler(config, cluster, clock=now_utc, metrics=metrics)


async def _worker(config: Config, store: Store, concurrency: int, metrics: Listen | None) -> int:
    from monitor.scaleout.worker import run_worker
    from monitor.store import cluster_store

    cluster = cluster_store(store)
    assert cluster is not None
    return await run_worker(config, cluster, clock=now_utc, concurrency=concurrency, metrics=metrics)


# ---------------------------------------------------------------------------------------------- search / stats
@main.command()
@click.argument("query", required=False)
@click.option("--topic", "topics", multiple=True, metavar="T", help="Only posts matching this topic (repeatable).")
@click.option("--source", "sources", multiple=True, metavar="S", help="Only posts from this source (repeatable).")
@click.option("--since", metavar="D", help="Published at or after: a duration back from now (30d) or an ISO date/time.")
@click.option("--until", metavar="D", help="Published at or before: a duration back from now or an ISO date/time.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100_000), help="At most this many rows.")
@click.option(
    "--sort",
    type=click.Choice(["newest", "rank"]),
    default="newest",
    show_default=True,
    help="Newest first, or best match first (FTS5 bm25) among the 10,000 most recently stored matches.",
)
@click.option(
    "--transliterate",
    is_flag=True,
    help="Also find the Latin spellings of the query's Cyrillic words, prefixes and phrases (Kazakh and Russian).",
)
@format_option
@click.pass_context
def search(
    ctx: click.Context,
    query: str | None,
    topics: tuple[str, ...],
    sources: tuple[str, ...],
    since: str | None,
    until: str | None,
    limit: int,
    sort: str,
    transliterate: bool,
    fmt: str,
) -> None:
    """Full-text search of titles and texts, newest first, with the match highlighted.

    \b
    QUERY is FTS5 syntax over unicode61 tokens: whole words, case-insensitive in every script,
      word*           any word starting so (inflections: сепаратист* finds сепаратистов)
      "a phrase"      words in order
      a OR b, a NOT b, NEAR(a b, 5)
    No stemming; ё and е are different letters here. A query FTS5 cannot parse is searched as a phrase
    instead. Without QUERY, lists the posts the filters select (e.g. --topic T --since 1h), newest first.
    --sort rank ranks only the 10,000 most recently stored posts matching QUERY (before --topic, --source,
    --since and --until filter them): an older match is not shown, however well it ranks; narrow QUERY, or
    use the default newest-first order, which reads every match.
    --transliterate ORs each Cyrillic word, prefix or phrase (5 letters or more) with its most likely Latin
    spellings (Kazakh 2021/2018/2017 and informal; Russian ICAO, GOST, BGN/PCGN, chat): Халық кеңес* also
    finds "Halyq kenesi", "Xalyq keñesi", "Halyk kenesinin".
    """
    from monitor.store import PostFilter

    where = PostFilter(
        topics=topics, sources=sources, since=when_option(since, "--since"), until=when_option(until, "--until")
    )
    store = get_store(ctx, readonly=True)
    with store:
        _known_topics(get_config(ctx), topics, store)
        searched = _transliterated(query) if transliterate and query else query
        rows, note = _search(store, searched, where, limit=limit, order=sort)
    if note:
        click.echo(f"note: {note}", err=True)
    plain = [
        {
            "id": r.id,
            "source": r.source,
            "url": r.url,
            "title": r.title,
            "published_at": r.published_at,
            "topics": list(r.topics),
            "snippet": _marked(r.snippet, "**", "**"),
            "cluster_id": r.cluster_id,
        }
        for r in rows
    ]
    if fmt != "table":
        write_rows(
            plain, fmt, columns=["id", "published_at", "source", "title", "topics", "url", "snippet", "cluster_id"]
        )
        return
    from rich.text import Text

    colour = sys.stdout.isatty()

    def snippet_cell(row: dict[str, Any], index: int) -> Text:
        return _highlighted(rows[index].snippet, colour)

    write_rows(
        plain,
        "table",
        columns=["published_at", "source", "title", "snippet"],
        rich_cells={"snippet": snippet_cell, "published_at": lambda row, i: Text(fmt_time(row["published_at"]))},
        title=f"{len(rows)} result(s)" + (f" for {query!r}" if query else ""),
    )


def _transliterated(query: str) -> str:
    """The FTS5 query with its Cyrillic words also in their Latin spellings (monitor.translit.fts_query)."""
    from monitor.translit import fts_query

    expanded = fts_query(query)
    if expanded != query:
        log.debug("search_transliterated query=%r", expanded)
    return expanded


def _search(
    store: Store, query: str | None, where: PostFilter, *, limit: int, order: str
) -> tuple[list[Any], str | None]:
    """Search; a query FTS5 cannot parse is searched again as a phrase (any other store failure is not a query's)."""
    try:
        return store.search(query, where, limit=limit, order=order), None
    except QueryError as exc:
        if not query:
            raise
        phrase = '"' + query.replace('"', '""') + '"'
        try:
            rows = store.search(phrase, where, limit=limit, order=order)
        except QueryError:
            fail(f"cannot search for {query!r}: {exc}", EXIT_USAGE)
        return rows, f"FTS5 could not parse the query ({exc}); searched the phrase {phrase}"


def _marked(snippet: str, start: str, end: str) -> str:
    from monitor.store import HIGHLIGHT_END, HIGHLIGHT_START

    return snippet.replace(HIGHLIGHT_START, start).replace(HIGHLIGHT_END, end)


def _highlighted(snippet: str, colour: bool) -> Text:
    from rich.text import Text

    from monitor.store import HIGHLIGHT_END, HIGHLIGHT_START

    if not colour:
        return Text(_marked(snippet, "**", "**"))
    text: Text = Text()
    for index, part in enumerate(re.split(f"[{HIGHLIGHT_START}{HIGHLIGHT_END}]", snippet)):
        text.append(part, style="bold black on yellow" if index % 2 else None)
    return text


@main.command()
@click.option("--topic", "topics", multiple=True, metavar="T", help="Only this topic (repeatable).")
@click.option(
    "--by",
    type=click.Choice(["hour", "day", "week"]),
    default="hour",
    show_default=True,
    help="Bucket size (by published time, UTC).",
)
@click.option("--since", metavar="D", help="From this time: a duration back from now (7d) or an ISO date/time.")
@click.option("--until", metavar="D", help="Up to this time: a duration back from now or an ISO date/time.")
@format_option
@click.pass_context
def stats(ctx: click.Context, topics: tuple[str, ...], by: str, since: str | None, until: str | None, fmt: str) -> None:
    """Matching posts per topic per hour, day or week, with distinct stories (near-duplicate clusters)."""
    from monitor.store import PostFilter

    where = PostFilter(topics=topics, since=when_option(since, "--since"), until=when_option(until, "--until"))
    with get_store(ctx, readonly=True) as store:
        _known_topics(get_config(ctx), topics, store)
        rows = store.stats(where, by=by)
    plain: list[dict[str, Any]] = [
        {"topic": r.topic, "bucket": r.bucket, "posts": r.posts, "stories": r.stories} for r in rows
    ]
    if fmt != "table":
        write_rows(plain, fmt, columns=["topic", "bucket", "posts", "stories"])
        return
    top = max((r.posts for r in rows), default=0)
    for row in plain:
        row["chart"] = bar(float(row["posts"]), top)
    write_rows(
        plain,
        "table",
        columns=["topic", "bucket", "posts", "stories", "chart"],
        title=f"matching posts per {by}",
        styles={"chart": "cyan"},
    )
    for topic in dict.fromkeys(r.topic for r in rows):
        series = [r.posts for r in rows if r.topic == topic]
        click.echo(
            f"{topic}: {sum(series)} posts, {sum(r.stories for r in rows if r.topic == topic)} stories "
            f"(sum over {by}s)  {sparkline(series[-60:])}"
        )


# ---------------------------------------------------------------------------------------------- status
@main.command()
@format_option
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Per-source health: last success, last error, consecutive failures, posts stored."""
    config = get_config(ctx)
    if _no_store_yet(config):
        click.echo(f"no store yet at {config.store}: run `monitor poll` or `monitor run`", err=True)
        rows: list[dict[str, Any]] = []
    else:
        with get_store(ctx, readonly=True) as store:
            rows = [_status_row(r) for r in store.source_rows()]
    by_name = {r["name"]: r for r in rows}
    table = []
    for source in config.sources:
        row = by_name.pop(source.name, {})
        table.append(
            {
                "source": source.name,
                "type": source.type,
                "enabled": source.enabled,
                "last_ok_at": row.get("last_ok_at"),
                "last_error": row.get("last_error"),
                "failures": row.get("failures", 0),
                "posts": row.get("posts", 0),
                "last_post_at": row.get("last_post_at"),
                "next_poll_at": row.get("next_poll_at"),
                "retry_at": row.get("retry_at"),
                "health": row.get("health"),
                "state": _state(source.enabled, row),
            }
        )
    for name, row in by_name.items():  # sources no longer configured but still in the store
        table.append(
            {
                "source": name,
                "type": row.get("type"),
                "enabled": False,
                "last_ok_at": row.get("last_ok_at"),
                "last_error": row.get("last_error"),
                "failures": row.get("failures", 0),
                "posts": row.get("posts", 0),
                "last_post_at": row.get("last_post_at"),
                "next_poll_at": None,
                "retry_at": None,
                "health": row.get("health"),
                "state": "not in config",
            }
        )
    if fmt != "table":
        write_rows(table, fmt)
        return
    now = now_utc().isoformat()
    for row in table:
        row["last_ok"] = fmt_time(row["last_ok_at"])
        row["last_post"] = fmt_time(row["last_post_at"])
        waits = []
        if row["retry_at"] and row["retry_at"] > now:
            waits.append(f"rate-limited until {fmt_time(row['retry_at'])}")
        elif row["next_poll_at"] and row["next_poll_at"] > now and row["failures"]:
            waits.append(f"backing off until {fmt_time(row['next_poll_at'])}")
        row["problem"] = "; ".join(x for x in (row["last_error"] or "", row["health"] or "", *waits) if x)
    styles = {"state": "bold"}
    write_rows(
        table,
        "table",
        columns=["source", "type", "state", "last_ok", "failures", "posts", "last_post", "problem"],
        styles=styles,
        title="sources",
    )


def _status_row(row: SourceRow) -> dict[str, Any]:
    """A source's stored state as `status` shows it (times as stored ISO text)."""
    state = row.state
    return {
        "name": state.name,
        "type": row.type,
        "last_ok_at": _iso_or_value(state.last_ok_at),
        "last_error": state.last_error,
        "failures": state.failures,
        "posts": row.posts,
        "last_post_at": _iso_or_value(state.last_post_at),
        "next_poll_at": _iso_or_value(state.next_poll_at),
        "retry_at": _iso_or_value(state.retry_at),
        "health": state.health,
    }


def _state(enabled: bool, row: dict[str, Any]) -> str:
    if not enabled:
        return "disabled"
    if not row:
        return "never polled"
    if row.get("failures"):
        return f"FAILING x{row['failures']}"
    if row.get("health"):
        return "degraded"
    return "ok"


# ---------------------------------------------------------------------------------------------- alerts
ALERT_COLUMNS = [
    "id",
    "kind",
    "topic",
    "source",
    "window_start",
    "window_end",
    "count",
    "expected",
    "score",
    "created_at",
    "status",
    "attempts",
    "sent_at",
    "error",
    "next_attempt_at",
    "message_id",
    "details",
    "cluster_id",
]


@main.command()
@click.option("--status", type=click.Choice(["pending", "sent", "failed"]), help="Only alerts in this state.")
@click.option("--kind", type=click.Choice(["spike", "health", "digest", "campaign"]), help="Only alerts of this kind.")
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(1, 1_000_000), help="Newest first, at most."
)
@format_option
@click.pass_context
def alerts(ctx: click.Context, status: str | None, kind: str | None, limit: int, fmt: str) -> None:
    """Alerts with their delivery status, attempts and last error (newest first), and each channel's delivery.

    `status` sums up the channels: sent when every channel has it, failed when one gave up. JSON rows add
    `deliveries` (channel, status, attempts, sent_at, next_attempt_at, error); CSV and the table one
    `channels` cell such as "email sent; analysts-telegram pending (2 tries)".
    """
    from monitor.store.details import encode_details
    from monitor.types import AlertKind, AlertStatus

    config = get_config(ctx)
    if _no_store_yet(config):
        rows: list[Any] = []
        channels: dict[int, list[Any]] = {}
    else:
        with get_store(ctx, readonly=True) as store:
            rows = store.alerts(
                status=AlertStatus(status) if status else None, kind=AlertKind(kind) if kind else None, limit=limit
            )
            channels = store.deliveries_of([r.id for r in rows])
    plain = [
        {
            name: _iso_or_value(encode_details(r.details) if name == "details" else getattr(r, name))
            for name in ALERT_COLUMNS
        }
        for r in rows
    ]
    for row in plain:
        row["deliveries"] = [
            {name: _iso_or_value(getattr(d, name)) for name in DELIVERY_COLUMNS} for d in channels.get(row["id"], [])
        ]
    if fmt == "json":
        write_rows(plain, fmt)
        return
    for row in plain:
        row["channels"] = _channels_cell(row["deliveries"])
    if fmt != "table":
        write_rows(plain, fmt, columns=[*ALERT_COLUMNS, "channels"])
        return
    for row in plain:
        if row["kind"] == "spike":
            row["what"] = f"{row['topic']}: {row['count']} (exp. {row['expected']:.1f})"
        elif row["kind"] == "campaign":
            topic = f"{row['topic']}: " if row["topic"] else ""
            row["what"] = f"{topic}cluster {row['cluster_id']}, {row['count']} voices"
        else:
            row["what"] = row["source"] or (row["details"] or "")
        row["created"] = fmt_time(row["created_at"])
        row["sent"] = fmt_time(row["sent_at"])
    write_rows(
        plain,
        "table",
        columns=["id", "kind", "what", "created", "status", "channels", "sent", "error"],
        title="alerts",
        styles={"status": "bold"},
    )


DELIVERY_COLUMNS = ["channel", "status", "attempts", "sent_at", "next_attempt_at", "error"]


def _channels_cell(deliveries: Sequence[Mapping[str, Any]]) -> str:
    """`email sent; analysts-telegram pending (2 tries)`: each channel's delivery in one cell."""
    parts = []
    for d in deliveries:
        count = d["attempts"]
        tries = f" ({count} {'try' if count == 1 else 'tries'})" if d["status"] != "sent" and count else ""
        parts.append(f"{d['channel']} {d['status']}{tries}")
    return "; ".join(parts) or "-"


def _iso_or_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


# ---------------------------------------------------------------------------------------------- notify
@main.command()
@click.option("--test", "test", is_flag=True, help="Send a test message (required: the only action for now).")
@click.option(
    "--channel", "names", multiple=True, metavar="NAME", help="Only this channel (repeatable): email or a notify name."
)
@format_option
@click.pass_context
def notify(ctx: click.Context, test: bool, names: tuple[str, ...], fmt: str) -> None:
    """Send a test message to each configured channel (alerts.email and every alerts.notify), or the named ones.

    Says per channel what happened; exit status 1 if any failed, 2 for an unknown channel or none configured.
    Nothing is written to the store.
    """
    from monitor.outbox import test_channels
    from monitor.outbox.channels import configured_channels

    if not test:
        raise click.UsageError("say what to do: `monitor notify --test [--channel NAME]` sends a test message")
    config = get_config(ctx)
    known = list(configured_channels(config))
    if not known:
        fail("no channel is configured: add alerts.email or alerts.notify to the config", EXIT_USAGE)
    unknown = [n for n in names if n not in known]
    if unknown:
        fail(f"unknown channel {', '.join(map(repr, unknown))} (channels: {', '.join(known)})", EXIT_USAGE)
    results = test_channels(config, list(dict.fromkeys(names)), now_utc())
    rows = [{"channel": r.channel, "status": r.status, "detail": r.detail} for r in results]
    if fmt == "table":
        for row in rows:
            click.echo(
                f"{row['channel']}: {row['status']} ({row['detail']})"
                if row["status"] == "sent"
                else f"{row['channel']}: FAILED: {row['detail']}"
            )
    else:
        write_rows(rows, fmt, columns=["channel", "status", "detail"])
    sys.exit(EXIT_FAILURE if any(not r.ok for r in results) else EXIT_OK)


# ---------------------------------------------------------------------------------------------- export / plot
@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
    help="CSV with a header row, or one JSON object per line.",
)
@click.option("--topic", "topics", multiple=True, metavar="T", help="Only posts matching this topic (repeatable).")
@click.option("--source", "sources", multiple=True, metavar="S", help="Only posts from this source (repeatable).")
@click.option("--since", metavar="D", help="Published at or after: a duration back from now (30d) or an ISO date/time.")
@click.option("--until", metavar="D", help="Published at or before: a duration back from now or an ISO date/time.")
@click.option("--all", "all_posts", is_flag=True, help="Every post, not only those matching a topic.")
@click.option("--bom", is_flag=True, help="Start the file with a UTF-8 byte order mark (for Excel).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    help="Write this file (a new one or a regular file, replaced when complete); - is standard output.",
)
@click.pass_context
def export(
    ctx: click.Context,
    fmt: str,
    topics: tuple[str, ...],
    sources: tuple[str, ...],
    since: str | None,
    until: str | None,
    all_posts: bool,
    bom: bool,
    output: Path | None,
) -> None:
    """Posts with their topics, oldest first, streamed (constant memory however large the store).

    By default only posts that match a topic; --all exports every post.
    """
    from monitor.export import export_posts

    if output == Path("-"):
        output = None
    from monitor.store import PostFilter

    where = PostFilter(
        topics=topics,
        sources=sources,
        since=when_option(since, "--since"),
        until=when_option(until, "--until"),
        matching_only=not all_posts,
    )
    with get_store(ctx, readonly=True) as store, progress_counter("exporting posts") as progress:
        _known_topics(get_config(ctx), topics, store)
        try:
            count = export_posts(store, fmt=fmt, output=output, where=where, bom=bom, progress=progress)
        except BrokenPipeError:  # `monitor export | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_OK)
        except OSError as exc:
            fail(f"cannot write {output or 'to stdout'}: {exc}")
        except MonitorError as exc:  # an output that is not a regular file; a store error
            fail(str(exc))
    click.echo(f"{count} posts exported" + (f" to {output}" if output else ""), err=True)


def _known_topics(config: Config, topics: Sequence[str], store: Store) -> None:
    """Exit 2 for a topic that is neither in the config nor in the store's matches (one rule for search, stats,
    export and plot: a topic removed from the config still names its stored matches)."""
    if not topics:
        return
    known = {t.name for t in config.topics} | store.topic_names()
    unknown = [t for t in topics if t not in known]
    if unknown:
        fail(f"no topic named {', '.join(unknown)} (known: {', '.join(sorted(known))})", EXIT_USAGE)


@main.command()
@click.option(
    "--topic",
    "topics",
    multiple=True,
    required=True,
    metavar="T",
    help="Topic to draw (repeatable: several topics on one chart).",
)
@click.option(
    "--since",
    metavar="D",
    default="30d",
    show_default=True,
    help="From this time: a duration back from now or an ISO date/time.",
)
@click.option("--until", metavar="D", help="Up to this time (default: now).")
@click.option("--by", type=click.Choice(["hour", "day"]), default="day", show_default=True, help="Bucket size.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The PNG file to write."
)
@click.pass_context
def plot(ctx: click.Context, topics: tuple[str, ...], since: str, until: str | None, by: str, output: Path) -> None:
    """Draw matching posts over time as a PNG: alerts marked, the baseline band shaded (one topic)."""
    from monitor.plotting import plot_topics

    config = get_config(ctx)
    start = when_option(since, "--since") or now_utc()
    end = when_option(until, "--until") or now_utc()
    with get_store(ctx, readonly=True) as store:
        _known_topics(config, topics, store)
        try:
            summary = plot_topics(store, config, topics=topics, since=start, until=end, by=by, output=output)
        except ValueError as exc:  # an empty or reversed span, or too many buckets
            fail(str(exc), EXIT_USAGE)
        except OSError as exc:
            fail(f"cannot write {output}: {exc}")
    click.echo(summary)


# ---------------------------------------------------------------------------------------------- serve / demo
@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address or name to listen on; requests must name it, localhost or the address in their Host header.",
)
@click.option(
    "--port",
    default=8001,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free one).",
)
@click.option(
    "--metadata",
    "write_metadata",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Only write the Datasette metadata file here and exit.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, write_metadata: Path | None) -> None:
    """Browse the store in Datasette, read-only, with table docs and canned queries.

    Needs the optional extra: pip install 'monitor[web]'.
    """
    from monitor.serve import serve_store

    config = get_config(ctx)
    try:
        code = serve_store(config, host=host, port=port, metadata_only=write_metadata)
    except MonitorError as exc:
        fail(str(exc))
    sys.exit(code)


@main.command("migrate-store")
@click.option("--to", "target", required=True, metavar="URL", help="The PostgreSQL store: postgresql://user@host/db.")
@click.pass_context
def migrate_store(ctx: click.Context, target: str) -> None:
    """Copy this config's SQLite store into an empty PostgreSQL store, in batches, and check the counts.

    The password comes from MONITOR_STORE_PASSWORD or libpq's environment. Stop the daemon first; then point
    `store:` at the URL. One transaction: a failure leaves the PostgreSQL store empty.
    """
    from monitor.config import store_url_problem
    from monitor.store import StoreURL, copy_store

    config = get_config(ctx)
    if not isinstance(config.store, Path):
        fail(f"the config's store is already {config.store}: migrate-store copies a SQLite store", EXIT_USAGE)
    problem = (
        store_url_problem(target)
        if target.split(":", 1)[0].lower() in ("postgresql", "postgres")
        else ("expected a postgresql:// URL")
    )
    if problem:
        fail(f"--to: {problem}", EXIT_USAGE)
    tty = sys.stderr.isatty()

    def progress(table: str, done: int, total: int) -> None:
        if tty:
            click.echo(f"\r  {table}: {done:,} / {total:,}", err=True, nl=False)

    copied = copy_store(config.store, StoreURL(target), progress)
    if tty:
        click.echo("", err=True)
    for item in copied:
        click.echo(f"  {item.table}: {item.rows:,} rows")
    click.echo(f"copied {config.store} into {target}: every table's count checked; set `store: {target}` to use it")


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("storage"),
    show_default=True,
    help="Where the demo's store, email (.eml) and chart go.",
)
@click.pass_context
def demo(ctx: click.Context, directory: Path) -> None:
    """The whole pipeline offline in under a minute: a local site with a week of history and a spike, a local
    SMTP server that receives the alert, a store under ./storage/. Prints what happened and saves the email."""
    from monitor.demo import run_demo

    try:
        code = run_demo(directory, clock=now_utc)
    except MonitorError as exc:
        fail(str(exc))
    sys.exit(code)


# ---------------------------------------------------------------------------------------------- detect
@main.command()
@click.argument("series", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--window", metavar="D", help="Count window (default: the config's alerts.window, else 1h).")
@click.option("--baseline", metavar="D", help="Baseline span before the window (default: alerts.baseline, else 7d).")
@click.option("--min-count", type=int, help="Never alert below this count per window (default: alerts.min_count).")
@click.option("--cooldown", metavar="D", help="Quiet time after an alert (default: alerts.cooldown, else 6h).")
@click.option(
    "--scales",
    metavar="S,S,..",
    help="Windows judged together, as multiples of --window (default 0.25,1,3; `1`: the window alone).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("times", "text", "json")),
    default="times",
    show_default=True,
    help="times: the ISO time of each alert, one per line (what scripts read); text: each alert with its window, "
    "count, expected and score; json: one JSON array of objects with those fields.",
)
@click.pass_context
def detect(
    ctx: click.Context,
    series: Path,
    window: str | None,
    baseline: str | None,
    min_count: int | None,
    cooldown: str | None,
    scales: str | None,
    fmt: str,
) -> None:
    """Run the spike detector over a CSV `timestamp,value` series and print each alert.

    One row per bucket; the bucket size is read from the timestamps; naive times are UTC. The detector and
    its defaults are the daemon's (the config's alerts section when a config is found; flags override);
    it is causal: each decision sees only the past.

    \b
    Output, one line per alert: its ISO time (UTC), 2015-03-02T14:05:00Z. With --format text, the fields
    follow the time, separated by two spaces:
      2015-03-02T14:05:00Z  window=15m  count=42  expected=6.1  score=5.3
    window = the scale that fired, count = posts in that window ending at the row, expected = the baseline's
    usual count for it, score ~ a standard normal quantile of the surprise.
    """
    from monitor.series import read_series
    from monitor.spikes import detect_alerts
    from monitor.units import format_duration

    params = _detector_params(ctx, window, baseline, min_count, cooldown, scales)
    try:
        times, values = read_series(series)
    except ValueError as exc:
        fail(f"{series}: {exc}", EXIT_USAGE)
    rows = [
        {
            "time": d.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "window": format_duration(d.window),
            "count": round(d.count, 3),
            "expected": round(d.expected, 3),
            "score": round(d.score, 3),
        }
        for d in detect_alerts(times, values, params)
    ]
    if fmt == "json":
        click.echo(json.dumps(rows))
        return
    if fmt == "times":  # the contract's form (DESIGN.md): a line is a timestamp and nothing else
        for r in rows:
            click.echo(r["time"])
        return
    for r in rows:
        count = f"{r['count']:g}"
        click.echo(
            f"{r['time']}  window={r['window']}  count={count}  expected={r['expected']:.1f}  score={r['score']:.1f}"
        )


def _detector_params(
    ctx: click.Context,
    window: str | None,
    baseline: str | None,
    min_count: int | None,
    cooldown: str | None,
    scales: str | None,
) -> Any:
    import msgspec

    from monitor.spikes import DetectorParams
    from monitor.units import parse_duration

    params = DetectorParams()
    path: Path = ctx.ensure_object(dict)["config_path"]
    if path.exists():
        alerts = get_config(ctx).alerts
        params = msgspec.structs.replace(
            params, window=alerts.window, baseline=alerts.baseline, min_count=alerts.min_count, cooldown=alerts.cooldown
        )
    overrides: dict[str, Any] = {}
    for name, value in (("window", window), ("baseline", baseline), ("cooldown", cooldown)):
        if value is not None:
            try:
                overrides[name] = parse_duration(value)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=f"--{name}") from None
    if min_count is not None:
        overrides["min_count"] = min_count
    if scales is not None:
        try:
            overrides["scales"] = tuple(float(x) for x in scales.split(","))
        except ValueError:
            raise click.BadParameter(
                "expected numbers separated by commas, e.g. 0.25,1,3", param_hint="--scales"
            ) from None
    try:
        return msgspec.structs.replace(params, **overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- operations
@main.command()
@click.option("--topic", "topics", multiple=True, metavar="T", help="Only this topic (repeatable; default: every one).")
@click.option("--since", metavar="D", help="Only posts published since: a duration back from now (30d) or an ISO date.")
@click.pass_context
def rematch(ctx: click.Context, topics: tuple[str, ...], since: str | None) -> None:
    """Apply the current topics to the posts already stored: a new topic finds its history, a removed term's
    matches go. Without --topic and --since, the matches of topics no longer configured are deleted too.

    Runs in short batches and is safe while `monitor run` writes the store. Raises no alert: the detector only
    judges the window ending now, never an old one.
    """
    from monitor.rematch import rematch as run_rematch

    config = get_config(ctx)
    configured = [t.name for t in config.topics]
    unknown = [t for t in topics if t not in configured]
    if unknown:
        fail(f"no topic named {', '.join(unknown)} in the config (configured: {', '.join(configured)})", EXIT_USAGE)
    start = when_option(since, "--since")
    chosen = list(dict.fromkeys(topics)) or configured
    with get_store(ctx, create=True) as store:
        total = store.post_count()

        def progress(read: int, added: dict[str, int], removed: dict[str, int]) -> None:
            click.echo(
                f"rematch: {read:,} posts read ({min(100, read * 100 // max(total, 1))}% of the store), "
                f"+{sum(added.values())} -{sum(removed.values())} matches",
                err=True,
            )

        summary = run_rematch(config, store, now=now_utc(), topics=list(topics) or None, since=start, on_batch=progress)
        holder = store.daemon_holder()
    for line in summary.lines(chosen):
        click.echo(line)
    click.echo(f"{summary.posts:,} posts re-matched for {len(chosen)} topic(s)")
    if not summary.recorded:
        click.echo("--since re-matched part of the history: the daemon will still say the topics changed", err=True)
    if holder is not None:
        click.echo(
            "a daemon holds this store: if it runs with older topics, reload it (kill -HUP its pid) so new posts "
            "match the same topics",
            err=True,
        )


@main.command()
@format_option
@click.pass_context
def health(ctx: click.Context, fmt: str) -> None:
    """Exit 0 when healthy, 1 when not, with one reason per line: the daemon's heartbeat older than 3 minutes
    (or no daemon), sources failing `health.failures` polls in a row, alerts undelivered for over an hour.

    For Docker HEALTHCHECK, systemd and cron. --format json prints every check with its verdict.
    """
    config = get_config(ctx)
    if _no_store_yet(config):
        checks = [_no_store_check(config)]
    else:
        with get_store(ctx, readonly=True) as store:
            checks = _health_checks(config, store, now_utc())
    failing = [c for c in checks if not c.ok]
    if fmt != "table":
        write_rows([c.as_row() for c in checks], fmt, columns=["check", "subject", "ok", "detail"])
    elif failing:
        for check in failing:
            click.echo(check.detail)
    else:
        click.echo("healthy: " + "; ".join(c.detail for c in checks if c.check == "daemon"))
    sys.exit(EXIT_FAILURE if failing else EXIT_OK)


def _no_store_check(config: Config) -> Any:
    from monitor.health import Check

    return Check("daemon", "", False, f"store: no store yet at {config.store} (no `monitor run` has started)")


def _health_checks(config: Config, store: Store, now: datetime) -> list[Any]:
    from monitor.health import DELIVERY_STUCK, DaemonSeen, daemon_check, outbox_checks, source_checks
    from monitor.types import Holder

    row = store.daemon_row()
    holder = store.daemon_holder()
    if holder is None or not holder.pid:
        holder = Holder.parse(row.holder) if row else None
    seen = DaemonSeen(
        running=store.daemon_holder() is not None,
        holder=f"pid {holder.pid} on {holder.host}" if holder else None,
        heartbeat_at=row.heartbeat_at if row else None,
    )
    enabled = [s.name for s in config.sources if s.enabled]
    return [
        daemon_check(seen, now),
        *source_checks(enabled, store.source_states(), failures=config.health.failures, now=now),
        *outbox_checks(store.stuck_deliveries(now - DELIVERY_STUCK), now),
    ]


def entry() -> None:
    global _OWN_PROCESS  # noqa: PLW0603  # set once, by the console script: the process is the command's
    _OWN_PROCESS = True
    main(prog_name="monitor")


if __name__ == "__main__":
    entry()
