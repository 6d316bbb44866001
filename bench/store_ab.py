"""The store's read commands, this version against another one, side by side on one store (A B A B).

    git archive <commit> | tar -x -C /tmp/scale/base
    .venv/bin/python bench/store_ab.py --base /tmp/scale/base --store /tmp/scale/stores/1000000.db --rounds 3

Each round runs, for each side in turn, every command in a fresh process of bench/cli_timer.py (6 calls: the
first, then 5 warm ones), the other version's code put first on PYTHONPATH. Prints each command's warm p50 and
p95 per side and the ratio of the p50s (this version / the other): ratios from one run, made side by side, are
what to read on a shared machine. Commands: `search WORD --format json` newest first and `--sort rank` for
the words given, `stats --by day --since 30d`, and a search of a word no post has (the floor).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import template_gen as gen
from bench.harness import config_yaml, median, percentile

HERE = Path(__file__).resolve().parent.parent
WORDS = ["the", "в", "процентов", "separatists"]


def warm_calls(code: Path, config: Path, args: list[str]) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str(code))
    cmd = [sys.executable, str(code / "bench" / "cli_timer.py"), "--calls", "6", "--", "--config", str(config), *args]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=600)
    answer = json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 else None
    if answer is None or any(answer["codes"]):
        raise RuntimeError(f"{code}: monitor {' '.join(args)} failed: {run.stderr[-1500:]}")
    return list(answer["warm"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="a checkout of the other version")
    parser.add_argument("--store", type=Path, required=True, help="a store built by bench/scale_store.py")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--words", nargs="+", default=WORDS)
    args = parser.parse_args()
    commands = {"floor": ["search", "zzqnothing", "--format", "json"]}
    for word in args.words:
        commands[f"{word} newest"] = ["search", word, "--format", "json"]
        commands[f"{word} rank"] = ["search", word, "--sort", "rank", "--format", "json"]
    commands["stats day 30d"] = ["stats", "--by", "day", "--since", "30d", "--format", "json"]
    sides = {"other": args.base.resolve(), "this": HERE}
    warm: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(config_yaml(args.store, ["http://127.0.0.1:9/unused.xml"], topics=gen.TOPICS_YAML))
        for _ in range(args.rounds):
            for side, code in sides.items():
                for name, command in commands.items():
                    warm.setdefault((name, side), []).extend(warm_calls(code, config, command))
    print(f"warm calls, ms ({args.rounds} rounds x 5 per side and command); ratio = this / other, of the p50s")
    for name in commands:
        a, b = warm[(name, "other")], warm[(name, "this")]
        other = f"other p50 {median(a) * 1000:7.1f} p95 {percentile(a, 95) * 1000:7.1f}"
        this = f"this p50 {median(b) * 1000:7.1f} p95 {percentile(b, 95) * 1000:7.1f}"
        print(f"   {name:<24} {other} | {this} | {median(b) / median(a):5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
