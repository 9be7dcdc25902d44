"""A real PostgreSQL server for the tests: Debian's `postgresql` package (`make postgres`), a cluster made by initdb in
a temporary folder, listening on 127.0.0.1 only on a free port with its socket in that folder, password
authentication over TCP. No mocks. Missing PostgreSQL fails the tests that need it (it is never skipped)."""

from __future__ import annotations

import glob
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

logger = logging.getLogger(__name__)

MISSING = ("PostgreSQL is not installed: the rooms tests need a real server. Run `make postgres` (it runs "
           "`apt-get install postgresql`, Debian's package with /usr/lib/postgresql/*/bin/initdb)")
USER = "tokenscope"


def bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin holding initdb and postgres, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One throw-away cluster: start, stop (to play a fault), start again on the same port, remove."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="tokenscope-pg-"))
        self.data, self.sockets, self.log = self.root / "data", self.root / "sock", self.root / "server.log"
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self._as = []  # initdb and postgres refuse to run as root: then run them as the `postgres` user
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.sockets.mkdir()
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as:
            os.chown(self.sockets, pw.pw_uid, pw.pw_gid)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions")
        pwfile.unlink()

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run one of the server's programs as its owner."""
        out = subprocess.run([*self._as, str(self.bindir / tool), *args], capture_output=True, text=True,
                             timeout=120)
        if check and out.returncode != 0:
            raise RuntimeError(f"{tool} failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
        return out

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        opts = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server now (fast shutdown: connected sessions are cut)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def running(self) -> bool:
        """Whether the server is up."""
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run `sql` as the superuser over the unix socket; its output."""
        return self._run("psql", "-h", str(self.sockets), "-p", str(self.port), "-U", USER, "-d", database,
                         "-v", "ON_ERROR_STOP=1", "-Atc", sql).stdout

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` over TCP with the password (psycopg 3)."""
        return f"postgresql+psycopg://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def require_bin_dir() -> Path:
    """The PostgreSQL programs' folder; the test fails (never skips) saying how to install them when missing."""
    bindir = bin_dir()
    if bindir is None or not (bindir / "postgres").exists():
        pytest.fail(MISSING, pytrace=False)
    return bindir


@pytest.fixture(scope="session")
def pg_server():
    """A running PostgreSQL server for the whole test session (fails, never skips, without PostgreSQL)."""
    server = PostgresServer(require_bin_dir())
    try:
        server.start()
    except Exception:
        log = server.log.read_text(errors="replace")[-2000:] if server.log.exists() else ""
        server.remove()
        pytest.fail(f"PostgreSQL did not start: {log}", pytrace=False)
    yield server
    server.remove()


@pytest.fixture
def pg_url(pg_server, request):
    """A fresh, empty database on the test server (dropped afterwards): its URL."""
    if not pg_server.running():  # a fault test stopped it and failed before starting it again
        pg_server.start()
    name = f"t_{secrets.token_hex(6)}"
    pg_server.psql(f"CREATE DATABASE {name}")
    yield pg_server.url(name)
    if pg_server.running():
        pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The URL of an empty rooms database: a SQLite file under tmp_path, or a database on the real PostgreSQL."""
    if request.param == "sqlite":
        from dashboard.rooms_schema import default_url

        return default_url(tmp_path)
    return request.getfixturevalue("pg_url")
