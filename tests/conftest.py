"""Fixtures shared by the whole suite: databases for the loader tests.

PostgreSQL is a real server started once per session (see ``tests/pgserver.py``), or the
one named by ``ENOS_TEST_POSTGRES_URL`` (its user needs CREATEDB); each test gets a fresh
database on it. SQLite is a file in the test's temporary directory, or in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from pgserver import fresh_database, postgres_url
from sqlalchemy.pool import StaticPool

# Durability buys nothing in a throwaway server and costs seconds per test run.
_TEST_SERVER_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@pytest.fixture(scope="session")
def postgresql_server_url() -> Iterator[str]:
    """URL of the suite's PostgreSQL server, started on first use, stopped at session end."""
    with postgres_url(settings=_TEST_SERVER_SETTINGS) as url:
        yield url


@pytest.fixture
def postgresql_url(postgresql_server_url: str) -> Iterator[str]:
    """URL of a new, empty database on the suite's server, dropped after the test."""
    with fresh_database(postgresql_server_url) as url:
        yield url


@pytest.fixture
def postgresql_engine(postgresql_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgresql_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a new SQLite database file."""
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'flows.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_memory_engine() -> Iterator[sa.Engine]:
    """An in-memory SQLite database, one connection shared by every user of the engine."""
    engine = sa.create_engine("sqlite://", poolclass=StaticPool)
    yield engine
    engine.dispose()


DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest) -> str:
    """URL of a new, empty database: once on SQLite, once on PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def database_engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine on :func:`database_url`'s database."""
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()
