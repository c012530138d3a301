"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb in a temporary folder, unix socket only."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "toefl_users"
DB_USER = "toefl"


class PostgresUnavailable(RuntimeError):
    pass


def find_bin_dir() -> Path:
    """The newest PostgreSQL server binaries on the machine (Debian layout first, then PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable("no PostgreSQL server binaries (initdb) found; .ci/run installs postgresql")


@dataclass
class PostgresCluster:
    """A cluster listening only on a unix socket in its own folder, so no TCP port can collide (unless a test
    asks for `tcp_port` too: the way a server in another container is reached)."""

    root: Path
    bin_dir: Path
    run_as: str | None
    tcp_port: int | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{DB_USER}@/{DB_NAME}?host={self.socket_dir}&port={self.port}"

    @property
    def port(self) -> int:
        """The port number, which also names the unix socket's file."""
        return self.tcp_port or 5432

    @property
    def tcp_url(self) -> str:
        """The same database by host name and port, over TCP on the loopback address."""
        assert self.tcp_port is not None, "started without a TCP port"
        return f"postgresql+psycopg://{DB_USER}@localhost:{self.tcp_port}/{DB_NAME}"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as is not None:
            # initdb and postgres refuse to run as root: run them as an unprivileged user.
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{args[0]} failed ({result.returncode}): {result.stderr or result.stdout}")

    def start(self) -> PostgresCluster:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as is not None:
            user = pwd.getpwnam(self.run_as)
            for path in (self.root, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", DB_USER, "-E", "UTF8", "--no-sync")
        listen = (
            f"-c listen_addresses='127.0.0.1' -p {self.tcp_port}" if self.tcp_port else "-c listen_addresses=''"
        )
        options = f"{listen} -k {self.socket_dir} -c fsync=off -c max_connections=200"
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.root / "pg.log"), "-w", "start"
        )
        self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", DB_USER, DB_NAME)
        return self

    def reset_database(self) -> None:
        """Drop and recreate the test database, for isolation between tests."""
        self._run("dropdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", DB_USER, "--force", DB_NAME)
        self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", DB_USER, DB_NAME)

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(tcp_port: int | None = None) -> PostgresCluster:
    bin_dir = find_bin_dir()
    run_as: str | None = None
    if os.geteuid() == 0:
        try:
            run_as = pwd.getpwnam("postgres").pw_name
        except KeyError as exc:
            raise PostgresUnavailable("running as root and no 'postgres' user to run the cluster as") from exc
    # Not under pytest's tmp_path: that folder is private to root and the cluster runs as another user.
    root = Path(tempfile.mkdtemp(prefix="toefl-pg-"))
    root.chmod(0o755)
    return PostgresCluster(root=root, bin_dir=bin_dir, run_as=run_as, tcp_port=tcp_port).start()
