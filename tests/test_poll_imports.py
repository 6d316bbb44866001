"""What `monitor poll` loads at start-up: not httpx's command-line client (rich, pygments), which it never runs."""

from __future__ import annotations

import json
import subprocess
import sys

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
