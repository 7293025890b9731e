"""Engine and unit of work. Engines are built on demand and cached per URL, never at import."""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

READ_ONLY = "triloop_read_only"
"""Execution option of a connection that only reads: on SQLite it begins with no write lock."""


BUSY_TIMEOUT_S = 30.0
"""How long a SQLite connection waits for a lock before it reports "database is locked"."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (see _sqlite_begin) instead of pysqlite's lazy BEGIN.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    _enable_wal(cur)
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _enable_wal(cur: sqlite3.Cursor) -> None:
    """Switch the file to WAL (persistent; a no-op once done), retrying while others hold it.

    On a new file in rollback mode, the switch reads page 1 and then upgrades to an exclusive
    lock; when several processes race there, SQLite answers "database is locked" at once
    instead of calling the busy handler (it would deadlock), so busy_timeout does not help.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: concurrent claimers queue on busy_timeout
    # instead of failing with "database is locked" when a read upgrades to a write.
    # A READ_ONLY connection (the schema check every task makes) never queues behind writers.
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


@functools.cache
def engine_for(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def unit_of_work(url: str) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error."""
    with _sessions(url)() as session, session.begin():
        yield session


@functools.cache
def _sessions(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url), expire_on_commit=False)
