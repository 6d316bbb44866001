"""The module map holds: imports only go down the layers, and each library lives in its one place (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"

# L0 values, L1 pure logic, L2 I/O components, L3 orchestration, L4 the commands' work, L5 the command line.
LAYERS = {
    "__init__": 0,
    "types": 0,
    "worktypes": 0,
    "exceptions": 0,
    "units": 1,
    "schema": 1,
    "config": 1,
    "yamldoc": 1,
    "normalize": 1,
    "match": 1,
    "translit": 1,
    "dedupe": 1,
    "workerproc": 2,
    "spikes": 1,
    "dates": 1,
    "prepare": 1,
    "alerts": 1,
    "campaigns": 1,
    "campaign_message": 1,
    "delivery": 1,
    "reports": 1,
    "chartdata": 1,
    "emails": 1,
    "topicset": 1,
    "health": 1,
    "notices": 1,
    "links": 1,
    "collectors": 2,
    "store": 2,
    "mail": 2,
    "notify": 2,
    "charts": 2,
    "series": 2,
    "metrics": 2,
    "pipeline": 3,
    "workers": 3,
    "outbox": 3,
    "export": 3,
    "rematch": 3,
    "fetchlog": 3,
    "service": 4,
    "daemon": 4,
    "scaleout": 4,
    "probe": 4,
    "output": 4,
    "serve": 4,
    "demo": 4,
    "plotting": 4,
    "cli": 5,
    "__main__": 6,
}
# Components of one layer that may use each other.
SIBLINGS = {
    frozenset({"pipeline", "workers"}),
    frozenset({"demo", "service"}),
    frozenset({"types", "worktypes"}),  # types re-exports the values the parse worker handles
}
# One module per source type: its config model (schema.Section) beside its collector, in collectors/__init__.
SOURCE_MODULES = {f"collectors.{kind}" for kind in ("feed", "html", "telegram", "mastodon", "reddit", "vk")}
# Third-party libraries and the modules allowed to import them.
OWNERS = {
    "httpx": {"collectors.fetch"},
    "httpcore": {"collectors.fetch", "collectors.aio_backend", "collectors.aio_sync"},  # the fetcher, its backend
    "protego": {"collectors.fetch"},
    "selectolax": {"collectors.html", "collectors.telegram", "collectors.selectors", "collectors.htmltext"},
    "lxml": {"collectors.feedparse"},
    "charset_normalizer": {"collectors.decode"},
    "sqlite3": {"store.sqlite", "store.postgres.migrate"},  # the backend (and the copy out of it into PostgreSQL)
    "psycopg": {"store.postgres"},  # likewise the PostgreSQL backend
    "psycopg_pool": {"store.postgres"},
    "fcntl": {"store.sqlite.lock"},
    "apscheduler": {"daemon"},
    "procrastinate": {"scaleout.queue"},
    "click": {"cli"},
    "yaml": {"yamldoc"},
    "smtplib": {"mail"},
    "apprise": {"notify"},
    "matplotlib": {"charts"},
    "ahocorasick": {"match"},
    "datasette": {"serve"},
    "prometheus_client": {"metrics"},
}


def modules() -> list[tuple[str, ast.Module]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        found.append((name.removesuffix(".__init__"), ast.parse(path.read_text(encoding="utf-8"))))
    return found


def imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer_of(module: str) -> int:
    top = module.split(".", maxsplit=1)[0]
    assert top in LAYERS, f"monitor.{module} is not in the module map of tests/test_layers.py: place it in a layer"
    return LAYERS[top]


@pytest.mark.parametrize(("name", "tree"), modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_go_down_the_layers(name: str, tree: ast.Module) -> None:
    mine = layer_of(name)
    for target in imported(tree):
        if not target.startswith("monitor.") or target.count(".") < 1:
            continue
        other = target.split(".")[1]
        if other not in LAYERS or other == name.split(".", maxsplit=1)[0]:
            continue
        theirs = LAYERS[other]
        if frozenset({name.split(".", maxsplit=1)[0], other}) in SIBLINGS:
            continue
        assert other not in ("cli", "daemon") or name in ("cli", "__main__"), f"monitor.{name} imports monitor.{other}"
        if mine in (1,):  # pure modules may build on each other
            assert theirs <= mine, f"monitor.{name} (L{mine}) imports monitor.{other} (L{theirs})"
        else:
            assert theirs < mine, f"monitor.{name} (L{mine}) imports monitor.{other} (L{theirs})"


@pytest.mark.parametrize(("name", "tree"), modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_library_lives_in_its_one_place(name: str, tree: ast.Module) -> None:
    for target in imported(tree):
        library = target.split(".")[0]
        if library in OWNERS:
            owned = any(name == owner or name.startswith(owner + ".") for owner in OWNERS[library])
            assert owned, f"monitor.{name} imports {library}, which belongs to {OWNERS[library]}"


# What the parse worker imports to parse a feed and prepare its posts. msgspec (config sections, and the records
# of monitor.types) is used everywhere else; these modules stay without it (2 MiB more of a second process).
WORKER_ROOTS = ("workerproc", "collectors.feedparse", "prepare")


def test_the_feed_workers_modules_import_no_msgspec() -> None:
    trees = dict(modules())
    seen: set[str] = set()
    todo = list(WORKER_ROOTS)
    while todo:  # the worker's monitor modules: the roots and what they import, lazily or not, transitively
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(trees[name]):
            if isinstance(node, ast.Import):
                todo += [a.name.removeprefix("monitor.") for a in node.names if a.name.startswith("monitor.")]
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "monitor":
                package = node.module.removeprefix("monitor").removeprefix(".")
                for alias in node.names:  # `from monitor import dedupe` names a module; `import __version__` no
                    inner = f"{package}.{alias.name}".lstrip(".")
                    todo.append(inner if inner in trees else package or "__init__")
    assert {"types", "prepare", "match", "worktypes"} - seen == {"types"}  # types (msgspec) is not among them
    uses = sorted(name for name in seen if any(t.split(".")[0] == "msgspec" for t in imported(trees[name])))
    assert uses == [], f"the parse worker would load msgspec through {uses}"


PURE = [
    "types",
    "exceptions",
    "units",
    "yamldoc",
    "normalize",
    "match",
    "dedupe",
    "spikes",
    "dates",
    "prepare",
    "alerts",
    "delivery",
    "reports",
    "chartdata",
    "emails",
    "topicset",
    "health",
    "notices",
    "links",
]
IO_MODULES = {
    "socket",
    "httpx",
    "sqlite3",
    "sqlite_utils",
    "smtplib",
    "subprocess",
    "urllib.request",
    "requests",
    "apprise",
}


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_do_no_io(name: str) -> None:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
    assert not {t.split(".")[0] for t in imported(tree)} & IO_MODULES
    calls = {
        node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & {"now", "utcnow", "today"}, f"monitor.{name} reads the clock"
    opened = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"
    ]
    assert not opened, f"monitor.{name} opens files"


BACKENDS = ("sqlite", "postgres")  # monitor.store.<backend>: each opened by `open_store` alone


@pytest.mark.parametrize(("name", "tree"), modules(), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_only_open_store_picks_the_store_backend(name: str, tree: ast.Module, backend_name: str) -> None:
    """Callers depend on the Store Protocol (monitor.store); a backend is imported by monitor.store alone (and by
    itself), and neither the Protocol's module nor the other backend knows it."""
    package = f"monitor.store.{backend_name}"
    backend = {t for t in imported(tree) if t == package or t.startswith(package + ".")}
    if name.startswith(f"store.{backend_name}"):
        return
    if name == "store":  # open_store (and copy_store, from SQLite into PostgreSQL)
        allowed = {package, f"{package}.open_{backend_name}", "monitor.store.postgres.PostgresStore"}
        allowed |= {"monitor.store.postgres.migrate", "monitor.store.postgres.migrate.copy_sqlite"}
        assert backend <= allowed
        return
    assert not backend, f"monitor.{name} imports the {backend_name} backend {sorted(backend)}: use monitor.store"


def test_a_source_type_is_one_module_and_one_registry_entry() -> None:
    from monitor import config
    from monitor.collectors import SOURCE_MODELS, SOURCE_TYPES

    assert {f"collectors.{name}" for name in SOURCE_TYPES} == SOURCE_MODULES
    for name, kind in SOURCE_TYPES.items():
        assert kind.model.__module__ == kind.collect.__module__ == f"monitor.collectors.{name}"
        assert issubclass(kind.model, config.SourceBase) and SOURCE_MODELS[name] is kind.model
    in_config = {v for v in vars(config).values() if isinstance(v, type) and issubclass(v, config.SourceBase)}
    assert in_config == {config.SourceBase}  # config knows no source type by name


def test_the_fetcher_is_composed_in_one_place() -> None:
    """Daemon, `monitor poll` and `check --probe` get their Fetcher from pipeline.open_fetcher, so that a new
    setting (a limit, a hook) is wired once."""
    callers = set()
    for name, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Fetcher":
                callers.add(name)
    assert callers == {"pipeline"}
