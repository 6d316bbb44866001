"""monitor vs the reader library on the same work, side by side in one run (issue 10, parts 1-2).

    .venv/bin/python bench/vs_reader.py                 # 200 feeds x 50 items, one host then 50 hosts, 3 pairs each
    .venv/bin/python bench/vs_reader.py --quick         # 20 feeds x 20 items, one host, one pair (< 1 min)
    .venv/bin/python bench/vs_reader.py --check         # exit 1 if a target is missed (else always 0)
    .venv/bin/python bench/vs_reader.py --profile       # also a cold and a re-poll `monitor poll` under cProfile
    .venv/bin/python bench/vs_reader.py --dev-venv      # monitor from the development venv (.venv), as it is

Installs reader 3.x into a venv of its own under the bench cache (~/.cache/monitor-bench/reader-venv, or
$MONITOR_BENCH_CACHE; reused when present; never a project dependency). monitor runs the same way, from a venv
of its own (monitor-venv beside it): this checkout installed as a user installs it (`pip install .`: runtime
dependencies only, byte-code compiled), reinstalled from the checkout at each run (--no-deps, then once with
dependencies so that one added since comes too; a few seconds).
The development venv differs from that in ways that are not monitor's: an editable install (an import hook,
and no byte-code when PYTHONDONTWRITEBYTECODE is set, so every start compiles monitor's sources) and the test
extras (selenium brings trio, which httpcore imports when present). `--dev-venv` measures it instead.

Serves template-style feeds (bench/template_gen.py: boilerplate sentences, English and Russian, about 2% on
topic, some syndicated) from bench/world_server.py in a process of its own, with ETag/304 and robots.txt, on
one loopback host (monitor per_host 20) and, as a second case, on 127.0.0.1..127.0.0.50
(monitor per_host 2, its default).

For each pair, A then B, each on a fresh store: A = `monitor poll` (a fresh process, robots on), cold, then
again as a fresh process (every answer a 304); B = reader's `update_feeds_iter(workers=20, scheduled=False)`
in a fresh process (bench/reader_update.py), cold (after add_feed) then again. Wall time of each process,
start-up included. Memory: the peak of each process tree's summed Pss, sampled every 20 ms (monitor's worker
process counts, shared pages split); the tree's summed RSS and the rusage max RSS of the child are printed beside
it. Ratios are monitor / reader per pair, then the median. Targets (issue 10): cold <= 0.33 x reader,
re-poll <= 0.5 x reader, peak memory <= reader + 30 MB.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    BENCH,
    CACHE,
    ROOT,
    Measured,
    farm_config,
    farm_per_host,
    feed_urls,
    median,
    monitor_exe,
    run_measured,
    verdict,
    world,
)

# reader vendors a feedparser that imports `sgmllib`; today's feedparser depends on feedparser-sgmllib, which
# renamed that module, so the old name's package comes along.
READER_SPEC = ["reader>=3,<4", "sgmllib3k"]
TARGET_COLD, TARGET_REPOLL, TARGET_RSS_MB = 0.33, 0.5, 30.0


def reader_python() -> Path:
    """The interpreter of reader's bench-only venv, created (and reader installed) on first use."""
    venv = CACHE / "reader-venv"
    python = venv / "bin" / "python"
    check = "import reader, sgmllib, sys; sys.exit(0 if reader.__version__.startswith('3.') else 1)"
    if python.exists() and subprocess.run([str(python), "-c", check], check=False, capture_output=True).returncode == 0:
        return python
    print(f"installing {' '.join(READER_SPEC)} into {venv} (bench-only) ...", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    install = [str(python), "-m", "pip", "install", "-q", *READER_SPEC]
    pip = subprocess.run(install, check=False, capture_output=True, text=True)
    if pip.returncode != 0:
        raise SystemExit(f"could not install {READER_SPEC} into {venv}:\n{pip.stderr[-3000:]}")
    return python


def monitor_install() -> Path:
    """The `monitor` script of the bench-only venv, with this checkout (re)installed into it, not editable."""
    venv = CACHE / "monitor-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing this checkout and its runtime dependencies into {venv} (bench-only) ...", flush=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        install = [str(python), "-m", "pip", "install", "-q", str(ROOT)]
    else:
        install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(ROOT)]
    pip = subprocess.run(install, check=False, capture_output=True, text=True)
    if pip.returncode == 0 and "--no-deps" in install:  # a dependency added since the venv was made comes too
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", str(ROOT)], check=False, capture_output=True, text=True
        )
    if pip.returncode != 0:
        raise SystemExit(f"could not install {ROOT} into {venv}:\n{pip.stderr[-3000:]}")
    return venv / "bin" / "monitor"


@dataclass(frozen=True)
class Side:
    cold: Measured
    repoll: Measured
    detail: str


def monitor_side(work: Path, urls: list[str], per_host: int, exe: Path) -> Side:
    work.mkdir()
    config = work / "config.yaml"
    config.write_text(farm_config(urls, per_host))
    cmd = [str(exe), "--config", str(config), "-q", "poll"]
    cold = run_measured(cmd, cwd=work)
    db = sqlite3.connect(work / "monitor.db")
    posts = db.execute("SELECT count(*) FROM posts").fetchone()[0]
    last = db.execute("SELECT max(id) FROM fetches").fetchone()[0] or 0
    db.close()
    repoll = run_measured(cmd, cwd=work)
    db = sqlite3.connect(work / "monitor.db")
    codes = dict(db.execute("SELECT http_status, count(*) FROM fetches WHERE id > ? GROUP BY 1", (last,)).fetchall())
    after = db.execute("SELECT count(*) FROM posts").fetchone()[0]
    db.close()
    for run in (cold, repoll):
        if run.returncode != 0:
            raise RuntimeError(f"monitor poll exited {run.returncode}: {run.stderr[-2000:]}")
    return Side(cold, repoll, f"{posts} posts; re-poll answers {codes}, posts added {after - posts}")


def reader_side(work: Path, urls: list[str], python: Path) -> Side:
    work.mkdir()
    (work / "urls.txt").write_text("\n".join(urls))
    base = [str(python), str(BENCH / "reader_update.py"), str(work / "reader.db"), str(work / "urls.txt")]
    cold = run_measured([*base, "--add"], cwd=work)
    repoll = run_measured(base, cwd=work)
    for run in (cold, repoll):
        if run.returncode != 0:
            raise RuntimeError(f"reader update exited {run.returncode}: {run.stderr[-2000:]}")
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in (cold, repoll))
    return Side(cold, repoll, f"{first['entries']} entries, failed {first['failed']}/{second['failed']}")


def run_case(
    hosts: int, feeds: int, items: int, pairs: int, per_host: int, python: Path, exe: Path
) -> dict[str, float]:
    print(f"\n== {feeds} feeds x {items} items on {hosts} loopback host(s); monitor per_host {per_host}, robots on; "
          f"reader workers 20; {pairs} pair(s), A = monitor, B = reader")  # fmt: skip
    rows = []
    with world(hosts=hosts, feeds=feeds, items=items, seed=10) as (_, port), tempfile.TemporaryDirectory() as tmp:
        urls = feed_urls(port, feeds, hosts)
        for pair in range(pairs):
            a = monitor_side(Path(tmp) / f"m{pair}", urls, per_host, exe)
            b = reader_side(Path(tmp) / f"r{pair}", urls, python)
            rows.append((a, b))
            print(f"   pair {pair + 1}: monitor {a.detail}; reader {b.detail}")
    head = f"   {'pair':>4} | {'cold s (m / r)':>15} {'ratio':>6} | {'re-poll s (m / r)':>17} {'ratio':>6} |"
    print(head + f" {'peak MiB: tree Pss (m / r)':>26} {'tree RSS (m / r)':>16} {'maxrss (m / r)':>14}")
    cold_r, re_r, rss_m, rss_r = [], [], [], []
    for i, (a, b) in enumerate(rows):
        cr, rr = a.cold.seconds / b.cold.seconds, a.repoll.seconds / b.repoll.seconds
        ma, ra = max(a.cold.tree_mib, a.repoll.tree_mib), max(a.cold.tree_rss_mib, a.repoll.tree_rss_mib)
        mb, rb = max(b.cold.tree_mib, b.repoll.tree_mib), max(b.cold.tree_rss_mib, b.repoll.tree_rss_mib)
        cold_r.append(cr)
        re_r.append(rr)
        rss_m.append(ma)
        rss_r.append(mb)
        print(
            f"   {i + 1:>4} | {a.cold.seconds:6.2f} / {b.cold.seconds:6.2f} {cr:6.2f} | "
            f"{a.repoll.seconds:7.2f} / {b.repoll.seconds:7.2f} {rr:6.2f} | {ma:18.0f} / {mb:5.0f} "
            f"{ra:8.0f} / {rb:5.0f} "
            f"{max(a.cold.maxrss_mib, a.repoll.maxrss_mib):6.0f} / {max(b.cold.maxrss_mib, b.repoll.maxrss_mib):5.0f}"
        )
    result = {
        "cold_ratio": median(cold_r),
        "repoll_ratio": median(re_r),
        "rss_monitor": median(rss_m),
        "rss_reader": median(rss_r),
        "cold_monitor": median([a.cold.seconds for a, _ in rows]),
        "cold_reader": median([b.cold.seconds for _, b in rows]),
        "repoll_monitor": median([a.repoll.seconds for a, _ in rows]),
        "repoll_reader": median([b.repoll.seconds for _, b in rows]),
    }
    print(f"   medians: cold {result['cold_monitor']:.2f} s vs {result['cold_reader']:.2f} s, ratio "
          f"{result['cold_ratio']:.2f} (target <= {TARGET_COLD}: {verdict(result['cold_ratio'] <= TARGET_COLD)}); "
          f"re-poll {result['repoll_monitor']:.2f} s vs {result['repoll_reader']:.2f} s, ratio "
          f"{result['repoll_ratio']:.2f} (target <= {TARGET_REPOLL}: "
          f"{verdict(result['repoll_ratio'] <= TARGET_REPOLL)})")  # fmt: skip
    extra = result["rss_monitor"] - result["rss_reader"]
    print(f"   peak memory (tree Pss): monitor {result['rss_monitor']:.0f} MiB, "
          f"reader {result['rss_reader']:.0f} MiB, "
          f"difference {extra:+.0f} MiB (target <= +{TARGET_RSS_MB:.0f}: "
          f"{verdict(extra <= TARGET_RSS_MB)})")  # fmt: skip
    return result


def profile_cold(feeds: int, items: int, hosts: int, per_host: int, exe: Path, top: int = 30) -> None:
    """A cold `monitor poll` and then the re-poll under cProfile (python -m cProfile -m monitor), top functions."""
    import pstats

    with world(hosts=hosts, feeds=feeds, items=items, seed=10) as (_, port), tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = work / "config.yaml"
        config.write_text(farm_config(feed_urls(port, feeds, hosts), per_host))
        for name in ("cold", "re-poll"):
            out = work / f"{name}.prof"
            python = str(exe.with_name("python"))
            cmd = [python, "-m", "cProfile", "-o", str(out), "-m", "monitor", "--config", str(config)]
            run = run_measured([*cmd, "-q", "poll"], cwd=work)
            print(
                f"\n== profile: {name} `monitor poll` under cProfile, {feeds} x {items}, {hosts} host(s): "
                f"{run.seconds:.2f} s\n   (with the profiler's overhead; the worker process is not profiled)"
            )
            stats = pstats.Stats(str(out))
            for key in ("tottime", "cumulative"):
                print(f"   -- top {top} by {key}")
                stats.sort_stats(key).print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 50], help="the cases: hosts per case")
    parser.add_argument("--quick", action="store_true", help="20 feeds x 20 items, one host, one pair")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--profile", action="store_true", help="also profile one cold monitor poll (one host)")
    parser.add_argument("--dev-venv", action="store_true", help="run monitor from the development venv")
    args = parser.parse_args()
    if args.quick:
        args.feeds, args.items, args.pairs, args.hosts = 20, 20, 1, [1]
    python = reader_python()
    version = subprocess.run([str(python), "-c", "import reader; print(reader.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    exe = Path(monitor_exe()) if args.dev_venv else monitor_install()
    print(f"monitor: {exe}; reader {version}: {python}")
    missed = False
    for hosts in args.hosts:
        per_host = farm_per_host(hosts)
        result = run_case(hosts, args.feeds, args.items, args.pairs, per_host, python, exe)
        missed |= result["cold_ratio"] > TARGET_COLD or result["repoll_ratio"] > TARGET_REPOLL
        missed |= result["rss_monitor"] - result["rss_reader"] > TARGET_RSS_MB
    if args.profile:
        profile_cold(args.feeds, args.items, 1, 20, exe)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
