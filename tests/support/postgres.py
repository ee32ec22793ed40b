"""A throwaway real PostgreSQL server for the test session."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from devtools.supervisor import STOP_TIMEOUT, SupervisedServer
from pipelines.serve import free_port

HOST = "127.0.0.1"
USER = "ratatouille"
# PostgreSQL refuses to run as root; this account owns the cluster when the tests are root.
SERVER_ACCOUNT = "nobody"
# A server clock that is not UTC: Dagster stores naive timestamps from the server's
# CURRENT_TIMESTAMP, so a client that forgets to pin its session to UTC shows up in tests.
SERVER_TIMEZONE = "Asia/Tokyo"
SETTINGS = {
    "listen_addresses": HOST,
    "timezone": SERVER_TIMEZONE,
    "logging_collector": "off",
    # Durability is worth nothing in a throwaway cluster and costs seconds per test.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def _bin_dir() -> Path:
    """PostgreSQL's own binaries (Debian's /usr/local/bin links point into them)."""
    found = shutil.which("pg_ctl")
    if not found:
        raise RuntimeError("`pg_ctl` not found; install PostgreSQL (Debian: postgresql)")
    return Path(found).resolve().parent


class PostgresServer(SupervisedServer):
    """`postgres` on 127.0.0.1 with password (scram) auth over TCP, run as an unprivileged user."""

    name = log_name = "postgres"
    # A fast shutdown: roll back open transactions, disconnect clients, checkpoint.
    death_signal = signal.SIGINT

    def __init__(self, tmp_dir: Path) -> None:
        super().__init__(tmp_dir, "postgres.log")
        self.user = USER
        self.password = secrets.token_hex(16)
        self.port = 0
        self._as_root = os.geteuid() == 0
        # pytest's tmp dirs are 0700 and root's: the server account could not reach a
        # cluster inside them, so as root the cluster gets a folder of its own.
        self.base_dir = (
            Path(tempfile.mkdtemp(prefix="ratatouille-pg-")) if self._as_root else self.tmp_dir
        )
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "sock"
        self._bin = _bin_dir()

    def _run_as(self) -> dict[str, Any]:
        """Popen arguments that drop root for the server account (no runuser/setpriv needed)."""
        if not self._as_root:
            return {}
        account = pwd.getpwnam(SERVER_ACCOUNT)
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _prepare(self) -> None:
        """initdb: a fresh cluster whose superuser has our password."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            account = pwd.getpwnam(SERVER_ACCOUNT)
            for path in (self.base_dir, self.socket_dir, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
        cmd = [
            str(self._bin / "initdb"),
            f"--pgdata={self.data_dir}",
            f"--username={self.user}",
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",  # TCP, as Dagster connects, needs the password
            "--auth-local=trust",  # the socket is in our own 0700 folder
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "--no-instructions",
        ]
        # initdb takes ~1 s; its output only matters when it fails.
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, **self._run_as())
        pwfile.unlink()
        if out.returncode != 0:
            self.stop()
            raise RuntimeError(f"initdb failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")

    def _start_once(self) -> None:
        self.port = free_port()
        settings = {**SETTINGS, "port": str(self.port)}
        settings["unix_socket_directories"] = str(self.socket_dir)
        cmd = [str(self._bin / "postgres"), "-D", str(self.data_dir)]
        cmd += [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        self._spawn(cmd, cwd=self.base_dir, **self._run_as())
        self._wait_until_up(
            lambda: psycopg2.connect(self.dsn(), connect_timeout=1).close(),
            (psycopg2.OperationalError,),
            f"PostgreSQL on {HOST}:{self.port}",
        )

    def dsn(self, dbname: str = "postgres") -> str:
        return (
            f"host={HOST} port={self.port} user={self.user} password={self.password} "
            f"dbname={dbname}"
        )

    def connect(self, dbname: str = "postgres") -> Any:
        """A psycopg2 connection (autocommit) as the superuser."""
        conn = psycopg2.connect(self.dsn(dbname), connect_timeout=5)
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()

    def drop_database(self, name: str) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                # FORCE: Dagster's pooled connections may still be open.
                cur.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        finally:
            conn.close()

    def _ask_to_stop(self, proc: subprocess.Popen[bytes]) -> None:
        # pg_ctl's fast mode: roll back open transactions, disconnect clients, checkpoint.
        # Should it not finish in time, the supervisor kills the whole group.
        stop = [str(self._bin / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast"]
        stop += ["-w", "-t", str(int(STOP_TIMEOUT))]
        subprocess.run(stop, capture_output=True, check=False, **self._run_as())

    def stop(self) -> None:
        super().stop()
        if self._as_root:
            shutil.rmtree(self.base_dir, ignore_errors=True)
