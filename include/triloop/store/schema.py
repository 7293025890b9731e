"""Bring Triloop's database to the newest migration; one cheap read when it is already there.

Every task calls :func:`upgrade` through ``bootstrap()``, so the common case (already at
:data:`HEAD`) is one read of the version table, with no write lock and without importing
Alembic (~100 ms per process). Only a database behind takes the migration lock
(:func:`migration_transaction`), looks again and runs Alembic inside that one transaction
(:mod:`triloop.store.migrator`): concurrent callers migrate once, the others find it done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, inspect, text

from triloop.errors import PermanentError
from triloop.store.db import READ_ONLY, engine_for

HEAD = "0009"
"""The newest revision in migrations/versions; tests/integration/test_migrations.py checks it."""

VERSION_TABLE = "alembic_version"
"""Alembic's default; Triloop's database is its own, so this never meets Airflow's table."""

# pg_advisory_xact_lock key: "trilomig" as a big-endian signed 64-bit integer.
_PG_LOCK_KEY = int.from_bytes(b"trilomig", "big", signed=True)


class SchemaError(PermanentError):
    """The database cannot be brought to this Triloop's schema; the message says what was found."""


def current_revisions(connection: Connection) -> frozenset[str]:
    """The revision(s) recorded in the database; empty before the first migration.

    Read directly rather than through Alembic's MigrationContext, which logs two INFO lines
    each time it is made: every task would print them.
    """
    if not inspect(connection).has_table(VERSION_TABLE):
        return frozenset()
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
    return frozenset(rows)


def upgrade(url: str) -> None:
    """Migrate the database at ``url`` to :data:`HEAD` (idempotent, safe from many processes).

    An empty database gets every migration; one that ``create_all`` made before migrations
    existed is stamped at the baseline first (see :func:`triloop.store.migrator.migrate`).
    """
    engine = engine_for(url)
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        if current_revisions(conn) == {HEAD}:
            return
    from triloop.store.migrator import migrate  # imports Alembic: only when there is work

    with migration_transaction(engine) as conn:
        migrate(conn, url)


@contextmanager
def migration_transaction(engine: Engine) -> Iterator[Connection]:
    """One connection in one transaction that holds the migration lock until it commits.

    SQLite: the engine's BEGIN IMMEDIATE takes the write lock, so a second process waits on
    busy_timeout and then sees the committed result. Foreign keys are off meanwhile (a batch
    migration drops and re-creates tables others refer to), checked before commit, and the
    connection is discarded after, so no pooled connection keeps them off. PostgreSQL: a
    transaction-scoped advisory lock; its DDL is transactional.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Outside any transaction, where SQLite honours it; through the DBAPI connection,
            # because a SQLAlchemy statement would begin one first.
            cursor = conn.connection.cursor()
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.close()
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
                yield conn
                if sqlite:
                    _check_foreign_keys(conn)
        finally:
            if sqlite:
                conn.invalidate()


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise SchemaError(f"migration left rows with dangling foreign keys: {broken[:5]}")
