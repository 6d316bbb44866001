"""What `monitor poll` loads at start-up: not httpx's command-line client (rich, pygments), which it never runs;
and how it treats the garbage collector around start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import refused_port

PROBE = """
import json, sys
import monitor.service
import httpx
print(json.dumps({"loaded": sorted(m for m in ("rich", "pygments") if m in sys.modules),
                  "main": callable(httpx.main)}))
"""


def test_poll_modules_do_not_load_httpx_command_line_client() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    answer = json.loads(done.stdout)
    assert answer == {"loaded": [], "main": True}


GC_PROBE = """
import gc, json, sys
import monitor.cli as cli
cli._OWN_PROCESS = True  # as the console script sets it
try:
    cli.main(["--config", sys.argv[1], "-q", "poll"], prog_name="monitor")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "gc_enabled": gc.isenabled(), "frozen": gc.get_freeze_count() > 0}))
"""


def test_poll_collects_garbage_again_after_start_up(tmp_path: Path) -> None:
    """`monitor poll` pauses the collector while it starts (imports, config, store) and freezes what start-up
    made; the poll itself runs with the collector on, as before."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"store: monitor.db\ntopics:\n  t: [word]\nsources:\n"
        f"  - {{name: closed, type: feed, url: 'http://127.0.0.1:{refused_port()}/feed.xml'}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", GC_PROBE, str(config)], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"code": 0, "gc_enabled": True, "frozen": True}
