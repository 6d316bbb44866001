"""What a `monitor poll` process loads before it has work for it: not numpy (signatures of new posts, a spike's
judgement), matplotlib, apprise or jinja2. Start-up time and memory of every poll, and of a re-poll above all."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numpy", "matplotlib", "apprise", "jinja2")
PROBE = f"""
import json, sys
import monitor.cli, monitor.config, monitor.collectors, monitor.store, monitor.service, monitor.workers
from monitor.store import open_store
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def test_the_poll_path_loads_no_heavy_library_at_start_up() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(done.stdout) == []


def test_numpy_still_loads_when_a_signature_is_made() -> None:
    probe = (
        "import sys; from monitor import dedupe; "
        "sig = dedupe.signature('t', ' '.join(f'word{i}' for i in range(30))); "
        "print(len(sig), 'numpy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split() == ["513", "True"]
