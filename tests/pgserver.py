"""A throwaway PostgreSQL 15 cluster for the test session (and benchmarks).

pg_ctl refuses to run as root, so as root the cluster is owned by and run as the `postgres` user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

PG_BIN_CANDIDATES = ["/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin"]


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in PG_BIN_CANDIDATES:
        path = Path(folder) / name
        if path.exists():
            return str(path)
    raise RuntimeError(f"PostgreSQL binary {name!r} not found; install postgresql-15 (see .ci/run)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """Start with `start()`, stop with `stop()`; `url(dbname)` gives a SQLAlchemy URL."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="coachloop-pg-"))
        self.datadir = self.root / "data"
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> PgServer:
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            _bin("initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C.UTF-8",
        )
        opts = f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        self._run(
            _bin("pg_ctl"),
            "-D",
            str(self.datadir),
            "-o",
            opts,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        deadline = time.time() + 30
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        return self

    def stop(self) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop")
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, template: str | None = None) -> str:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            tmpl = f" TEMPLATE {template}" if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
