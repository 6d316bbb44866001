"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory, a server listening on a Unix
socket there only (no TCP port), run as an unprivileged user (initdb refuses root), stopped at the end.

Debian's server binaries live in /usr/lib/postgresql/<version>/bin (`apt-get install postgresql`); elsewhere
pg_ctl on PATH is used. Tests skip, saying why, only when there is no server binary (or no user to run it as).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"
PASSWORD_ROLE = "monitor_pw"  # a role that must log in with a password (scram), for the password tests
PORT = 5432  # names the socket file only: the server listens on no TCP port


def server_bin() -> Path | None:
    """The directory of initdb/pg_ctl/postgres, or None when no server is installed."""
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def skip_reason() -> str | None:
    if server_bin() is None:
        return "no PostgreSQL server binary (apt-get install postgresql): the PostgreSQL store tests are skipped"
    if os.geteuid() == 0 and _unprivileged_user() is None:
        return "running as root and no `postgres` user to run the server as (initdb refuses root)"
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam("postgres")
    return None


@dataclass
class Cluster:
    bin: Path
    base: Path  # holds the data directory, the socket and the log
    user: pwd.struct_passwd | None  # who runs the server (None: this user)
    _names: itertools.count[int]

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user.pw_name, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.base)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr.strip()} {log}")
        return done

    def url(self, database: str, user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@/{database}?host={self.base}&port={PORT}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        psql = str(self.bin / "psql") if (self.bin / "psql").exists() else "psql"
        done = subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.base), "-p", str(PORT), "-U", SUPERUSER,
             "-d", database, "-At", "-c", sql],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {done.stderr.strip()}")
        return done.stdout

    def new_database(self, owner: str = SUPERUSER) -> str:
        """A fresh, empty database; returns its name."""
        name = f"t{next(self._names)}"
        self.psql(f"CREATE DATABASE {name} OWNER {owner}")
        return name

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)


def start() -> Cluster:
    """initdb and start a cluster in a new temporary directory (the caller stops it)."""
    bin_dir = server_bin()
    assert bin_dir is not None
    user = _unprivileged_user() if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="monitor-pg-"))  # short: a socket path has at most 107 bytes
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    cluster = Cluster(bin_dir, base, user, itertools.count(1))
    try:
        cluster._run(
            "initdb", "-D", str(cluster.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C",
            "--no-instructions",
        )  # fmt: skip
        hba = cluster.data / "pg_hba.conf"
        hba.write_text(f"local all {PASSWORD_ROLE} scram-sha-256\n" + hba.read_text())
        options = (
            f"-k {base} -c listen_addresses='' -p {PORT} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        cluster._run("pg_ctl", "-D", str(cluster.data), "-o", options, "-l", str(cluster.log), "-w", "start")
        cluster.psql(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD 'not-in-any-file'")
    except BaseException:
        cluster.stop()
        raise
    return cluster
