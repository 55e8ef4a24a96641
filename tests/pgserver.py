"""Start a throwaway PostgreSQL server on a free loopback port (tests and benchmarks).

The server runs from a temporary directory (data, log and unix socket) with trust
authentication, as a non-root user: PostgreSQL refuses to run as root, so when this
process is root a dedicated system user is created and the server runs through
``runuser``. Set ``ENOS_TEST_POSTGRES_URL`` to use an existing server instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

SERVER_USER = "enos_pgtest"
"""System user that runs the server when this process is root."""

URL_VARIABLE = "ENOS_TEST_POSTGRES_URL"

_REQUIRED = ("initdb", "pg_ctl", "postgres")
_START_TIMEOUT_S = 60


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL binaries were found, or the server would not start."""


def find_bindir() -> Path:
    """Find the directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Looks on PATH, then at ``pg_config --bindir``, then under
    ``/usr/lib/postgresql/<version>/bin`` (newest version first).
    """
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates.extend(Path(p) for p in sorted(versions, key=_version_key, reverse=True))
    for directory in candidates:
        if all((directory / name).is_file() for name in _REQUIRED):
            return directory
    raise PostgresUnavailableError(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found on PATH, via "
        "pg_config or under /usr/lib/postgresql/*/bin; run tests/ensure_postgres.sh or set "
        f"{URL_VARIABLE}"
    )


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_user() -> str:
    """Create the server's system user if missing; return its name."""
    if not _user_exists():
        created = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SERVER_USER],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if created.returncode != 0 and not _user_exists():  # another run may have won
            raise PostgresUnavailableError(f"useradd failed: {created.stderr.strip()}")
    return SERVER_USER


def _user_exists() -> bool:
    return (
        subprocess.run(["id", "-u", SERVER_USER], capture_output=True, check=False).returncode == 0
    )


class PostgresServer:
    """One PostgreSQL server in a temporary directory.

    Args:
        settings: Extra server settings (``-c name=value``), e.g. ``{"fsync": "off"}``.
    """

    def __init__(self, *, settings: Mapping[str, str] | None = None) -> None:
        self._settings = dict(settings or {})
        self._bindir = find_bindir()
        self._run_as = _ensure_user() if os.geteuid() == 0 else None
        self._root = Path(tempfile.mkdtemp(prefix="enos-pg-"))
        self._data = self._root / "data"
        self._log = self._root / "server.log"
        self.port = 0
        self._is_running = False

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database as superuser ``postgres``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresServer:
        if self._run_as:
            shutil.chown(self._root, user=self._run_as)
        self._run("initdb", "-D", str(self._data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        for _ in range(3):
            self.port = free_port()
            options = [
                f"-p {self.port}",
                "-h 127.0.0.1",
                f"-k {self._root}",
                *(f"-c {k}={v}" for k, v in self._settings.items()),
            ]
            result = self._run(
                "pg_ctl", "-D", str(self._data), "-l", str(self._log), "-o", " ".join(options),
                "-w", "-t", str(_START_TIMEOUT_S), "start", check=False,
            )  # fmt: skip
            if result.returncode == 0:
                self._is_running = True
                return self
        log = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
        self.remove()
        raise PostgresUnavailableError(f"PostgreSQL did not start:\n{log}")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        if self._is_running:
            self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop", check=False)
            self._is_running = False
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self._bindir / program), *args]
        if self._run_as:
            command = ["runuser", "-u", self._run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if check and result.returncode != 0:
            self.remove()
            raise PostgresUnavailableError(
                f"{program} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )
        return result


@contextmanager
def fresh_database(server_url: str, *, prefix: str = "test") -> Iterator[str]:
    """Yield the URL of a new, empty database on the server; drop it afterwards.

    The server's user needs the CREATEDB privilege (the superuser of a server started
    here has it).
    """
    server = sa.make_url(server_url)
    if server.drivername == "postgresql":
        server = server.set(drivername="postgresql+psycopg")
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def postgres_url(*, settings: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yield the URL of ``ENOS_TEST_POSTGRES_URL`` or of a server started for the block."""
    external = os.environ.get(URL_VARIABLE)
    if external:
        yield external
        return
    server = PostgresServer(settings=settings).start()
    try:
        yield server.url
    finally:
        server.stop()
