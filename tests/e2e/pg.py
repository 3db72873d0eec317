"""A real PostgreSQL 15 (Debian's postgresql-15 package) for tests and benchmarks: initdb in a
temp dir, started on a free port on 127.0.0.1 with trust authentication, stopped at the end.
Never a mock.

PostgreSQL refuses to run as root: when run as root, initdb and pg_ctl run as the `postgres` OS
user (runuser), in a directory that user owns.

In pytest:     from pg import pg_server   (a session-scoped fixture yielding a PgServer)
From a shell:  python3 tests/e2e/pg.py start DIR   → prints the DSN (postgresql://…/postgres)
               python3 tests/e2e/pg.py stop DIR
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("SY_PG_BIN", "/usr/lib/postgresql/15/bin"))
PSQL = shutil.which("psql") or str(PG_BIN / "psql")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PgServer:
    """One PostgreSQL cluster in `root` (created if missing), listening on 127.0.0.1:port."""

    def __init__(self, root: str | Path | None = None, port: int | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="sy-pg-"))
        self.data = self.root / "data"
        self.port = port or 0
        self.user = "postgres"

    @property
    def dsn_base(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}"

    def dsn(self, db: str = "postgres") -> str:
        return f"{self.dsn_base}/{db}"

    def start(self, timeout: float = 60) -> "PgServer":
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL 15 not installed ({PG_BIN}): scripts/install-deps.sh test")
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)
        if not (self.data / "PG_VERSION").exists():
            subprocess.run(_as_owner([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                                      "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]),
                           check=True, capture_output=True, timeout=timeout)
        last_error = ""
        for _ in range(3):  # the port can be taken between the check and the bind
            if not self.port:
                self.port = _free_port()
            opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
                    " -c max_connections=50 -c shared_buffers=128MB")
            r = subprocess.run(_as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l",
                                          str(self.root / "server.log"), "-o", opts, "-w", "-t",
                                          str(int(timeout)), "start"]),
                               capture_output=True, timeout=timeout + 10)
            if r.returncode == 0:
                return self
            last_error = r.stderr.decode() + self.log_text()
            self.port = 0
        raise RuntimeError(f"PostgreSQL did not start: {last_error}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(_as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                                      "-w", "stop"]), capture_output=True, timeout=60)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def psql(self, sql: str, db: str = "postgres") -> subprocess.CompletedProcess:
        return subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.dsn(db),
                               "-c", sql], capture_output=True, timeout=120)

    def query(self, sql: str, db: str = "postgres") -> list[list[str | None]]:
        """Rows as lists of text (NULL → None), via psql --csv."""
        r = subprocess.run([PSQL, "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", "-P",
                            "null=\\N", "-d", self.dsn(db), "-c", sql],
                           capture_output=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"psql failed: {r.stderr.decode()}")
        rows = list(csv.reader(io.StringIO(r.stdout.decode())))
        return [[None if v == "\\N" else v for v in row] for row in rows[1:]]

    def create_database(self, name: str) -> str:
        r = self.psql(f'CREATE DATABASE "{name}"')
        if r.returncode != 0:
            raise AssertionError(r.stderr.decode())
        return self.dsn(name)


try:
    import pytest

    @pytest.fixture(scope="session")
    def pg_server():
        server = PgServer().start()
        yield server
        server.destroy()
except ImportError:  # used from a shell without pytest
    pass


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(argv[2])
    if argv[1] == "start":
        s = PgServer(root).start()
        (root / "port").write_text(str(s.port))
        print(s.dsn())
        return 0
    port = int((root / "port").read_text()) if (root / "port").exists() else 0
    PgServer(root, port).stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
