"""A real PostgreSQL with pgvector for the memory tests: the ``postgres_url`` fixture runs
``initdb`` into a temporary folder and a server on a free 127.0.0.1 port for the test session
(each pytest-xdist worker that needs one starts its own), and stops it at the end.

The server is Debian's (``/usr/lib/postgresql/NN/bin``, with ``postgresql-NN-pgvector``), else
the one the ``pgserver`` wheel ships (PostgreSQL 16 with pgvector, for a Debian release that
has no pgvector package). PostgreSQL refuses to run as root: as root the server runs as the
``postgres`` OS user. Without any of that the pgvector tests skip, saying how to install it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

INSTALL = (
    "`make test` installs Debian's postgresql-NN-pgvector when run as root and the Debian "
    "release has it (bookworm has none); else pip install pgserver (a PostgreSQL with pgvector "
    "in a wheel)"
)
DATABASE = "agentflow_test"


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.name.split(".") if part.isdigit())


def pgvector_bindirs() -> list[Path]:
    """The PostgreSQL installations here that have the pgvector extension, newest Debian
    first, then pgserver's."""
    found = [
        home / "bin"
        for home in sorted(Path("/usr/lib/postgresql").glob("*"), key=_version, reverse=True)
        if (home / "bin" / "postgres").exists()
        and Path(f"/usr/share/postgresql/{home.name}/extension/vector.control").exists()
    ]
    spec = importlib.util.find_spec("pgserver")  # found, not imported: only its files are used
    for folder in (spec.submodule_search_locations or []) if spec else []:
        pginstall = Path(folder) / "pginstall"
        if (pginstall / "share/postgresql/extension/vector.control").exists():
            found.append(pginstall / "bin")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One initdb'd data folder and the server running on it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = os.geteuid() == 0
        if self.root:
            try:
                self.owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip(
                    "PGVECTOR TESTS SKIPPED: running as root and there is no `postgres` OS user "
                    f"to run PostgreSQL as: {INSTALL}"
                )
        self.copied: Path | None = None
        if self.root:
            self.bindir = self._runnable(bindir)
        self.home = Path(tempfile.mkdtemp(prefix="agentflow-pg-"))
        self.data = self.home / "data"
        self.log = self.home / "server.log"
        self.port = 0
        if self.root:
            os.chown(self.home, self.owner.pw_uid, self.owner.pw_gid)

    def _runnable(self, bindir: Path) -> Path:
        """The ``postgres`` user may not reach an installation inside a private folder (a
        checkout under a root-only directory, a home): then it runs a copy, in a temporary
        folder it can read (PostgreSQL finds its files relative to its binaries)."""
        probe = ["runuser", "-u", "postgres", "--", "test", "-x", str(bindir / "postgres")]
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return bindir
        self.copied = Path(tempfile.mkdtemp(prefix="agentflow-pginstall-"))
        self.copied.chmod(0o755)
        package = bindir.parent.parent  # site-packages/pgserver; its libraries lie beside it
        for folder in (package, package.with_name(f"{package.name}.libs")):
            if folder.is_dir():
                shutil.copytree(folder, self.copied / folder.name, symlinks=True)
                (self.copied / folder.name).chmod(0o755)
        return self.copied / package.name / bindir.parent.name / bindir.name

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / program), *args]
        if self.root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, cwd=self.home, capture_output=True, text=True, timeout=120)
        if check and done.returncode:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        for _ in range(5):  # another process may take the free port before the server does
            self.port = _free_port()
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c unix_socket_directories={self.home}"
            )
            # -w: pg_ctl polls until the server accepts connections (or has failed).
            done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                             "-t", "90", "-o", options, "start", check=False)  # fmt: skip
            if done.returncode == 0:
                return
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "could not bind" not in log and "already in use" not in log:
                raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()}\n{log}")
        raise RuntimeError(f"PostgreSQL found no free port:\n{log}")

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    @contextlib.contextmanager
    def scratch_database(self, name: str) -> Iterator[str]:
        """A new empty database (no extension created in it), dropped afterwards."""
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            yield name
        finally:
            with psycopg.connect(self.url(), autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self.port:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.home, ignore_errors=True)
        if self.copied is not None:
            shutil.rmtree(self.copied, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL with pgvector available (skips, loudly, without one)."""
    bindirs = pgvector_bindirs()
    if not bindirs:
        servers = sorted(p.parent.name for p in Path("/usr/lib/postgresql").glob("*/bin"))
        have = f"PostgreSQL {', '.join(servers)} is installed without pgvector" if servers else (
            "PostgreSQL is not installed")  # fmt: skip
        pytest.skip(f"PGVECTOR TESTS SKIPPED: {have}. {INSTALL}")
    server = PostgresServer(bindirs[0])
    try:
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql://postgres@127.0.0.1:PORT/agentflow_test`` (a superuser, trust auth)."""
    return postgres_server.url(DATABASE)
