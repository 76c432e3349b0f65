"""Fixtures for grid/ tests: a scratch PostgreSQL database (created, migrated, dropped) and a
small demo city shared by the session.

The database server comes from GRIDWATCH_TEST_PG_DSN (default: the project TimescaleDB cluster,
postgresql://postgres@127.0.0.1:5433/postgres). If it does not answer the tests fail at once
naming it — never a silent skip, never a silent fallback to another server.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from psycopg import sql

from db.migrate import drop_database, ensure_database, migrate
from grid.democity import DemoConfig, generate

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5433/postgres"
REGISTRY_TABLES = ("market_entity", "terminal", "person_grid", "person", "grid_adjacency", "grid_level2",
                   "grid_level1", "branch_office")
SMALL_ENTITIES = 3000


@pytest.fixture(scope="session")
def grid_pg_dsn():
    server = os.environ.get("GRIDWATCH_TEST_PG_DSN", DEFAULT_DSN)
    dsn = psycopg.conninfo.make_conninfo(server, dbname=f"gw_gridtest_{os.getpid()}_{uuid.uuid4().hex[:6]}")
    try:
        ensure_database(dsn)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {server} (GRIDWATCH_TEST_PG_DSN; default is the project "
                    f"TimescaleDB cluster on :5433, started by `./gw setup`): {exc}", pytrace=False)
    try:
        migrate(dsn)
        yield dsn
    finally:
        drop_database(dsn)


@pytest.fixture
def conn(grid_pg_dsn):
    """A connection to the scratch database with empty registry tables."""
    with psycopg.connect(grid_pg_dsn, autocommit=True) as c:
        c.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, REGISTRY_TABLES))))
        c.execute("DELETE FROM gw_meta WHERE key = 'grid_version'")
        yield c


@pytest.fixture(scope="session")
def small_city():
    return generate(DemoConfig(seed=11, entities=SMALL_ENTITIES))


@pytest.fixture(scope="session")
def small_city_dir(small_city, tmp_path_factory):
    from grid.democity import write

    out = tmp_path_factory.mktemp("demo-small")
    write(small_city, out)
    return out
