"""`monitor demo`: the whole pipeline offline, on a fictional local site, a local SMTP server and a fresh store.

Modules, one job each:
  texts     the words of the fictional world (everyday templates, the story of the spike)   pure data
  world     the world dated relative to `now`: a week of history, the spike in the last hour  pure
  render    the world as a site: RSS, Atom, a news site with comments, a Telegram preview    pure
  server    the local HTTP server on 127.0.0.1 that serves it
  mailbox   the local SMTP server on 127.0.0.1 that receives the alert
  configtext  the demo's config.yaml                                                          pure
  report    the facts read back from the store, and the summary lines
  run       `run_demo`: the steps, each named when it fails
"""

from __future__ import annotations

from monitor.demo.run import run_demo

__all__ = ["run_demo"]
