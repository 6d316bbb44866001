"""monitor: watch public media for topics and email analysts when a topic spikes."""

import sys
import types

__version__ = "0.1.0"


def _without_httpx_cli() -> None:
    """httpx imports its command-line client (click, rich, pygments: a third of a poll's start-up) whenever it is
    imported; monitor never runs it. A stand-in module keeps `httpx.main` working: it loads the real one when called.
    """
    if "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main")

    def main(*args: object, **kwargs: object) -> object:
        del sys.modules["httpx._main"]
        import importlib  # noqa: PLC0415  # only when someone runs httpx's own client

        return importlib.import_module("httpx._main").main(*args, **kwargs)

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in


_without_httpx_cli()
