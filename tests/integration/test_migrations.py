"""Alembic migrations of Triloop's database, on real SQLite files.

``test_upgrade_from_empty_matches_the_models`` is the "models and migrations agree" test: a
model change without a migration makes it fail.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.orm import Session
from triloop.store import migrator
from triloop.store.db import engine_for
from triloop.store.models import Base, Repo
from triloop.store.schema import (
    HEAD,
    VERSION_TABLE,
    SchemaError,
    current_revisions,
    migration_transaction,
    upgrade,
)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'triloop.db'}"


def schema_diff(url: str) -> list[Any]:
    with engine_for(url).connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def revisions(url: str) -> frozenset[str]:
    with engine_for(url).connect() as conn:
        return current_revisions(conn)


def table_sql(url: str) -> list[tuple[str, str]]:
    with engine_for(url).connect() as conn:
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master ORDER BY name"))
        return [(row.name, row.sql) for row in rows]


def add_repo(url: str, repo_id: str) -> None:
    """A repos row with the baseline's columns only (the ORM would write later ones too)."""
    row = {"id": repo_id, "name": repo_id, "origin": "/src", "remote": "/forge"}
    with engine_for(url).begin() as conn:
        conn.execute(insert(Repo.__table__).values(**row))


def repo_ids(url: str) -> list[str]:
    with Session(engine_for(url)) as session:
        return list(session.scalars(select(Repo.id)))


def test_head_constant_names_the_newest_script() -> None:
    assert migrator.head_revisions() == {HEAD}, "bump HEAD in triloop/store/schema.py"


def test_upgrade_from_empty_matches_the_models(url: str) -> None:
    upgrade(url)
    assert revisions(url) == {HEAD}
    assert schema_diff(url) == []


def test_second_upgrade_is_a_no_op_that_skips_alembic(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(url)
    add_repo(url, "kept")
    before = table_sql(url)

    def must_not_run(*_args: object) -> None:
        raise AssertionError("upgrade at head reached Alembic")

    monkeypatch.setattr(migrator, "migrate", must_not_run)
    upgrade(url)
    assert table_sql(url) == before
    assert revisions(url) == {HEAD}
    assert repo_ids(url) == ["kept"]


@pytest.mark.parametrize("db_backend", ["sqlite", "postgresql"])
def test_concurrent_upgrades_of_one_new_database_all_succeed(db_url: str) -> None:
    # Every process imports first, then all start upgrading at the same instant; on SQLite the
    # write lock serialises them, on PostgreSQL a transaction-scoped advisory lock does.
    url = db_url
    start = time.time() + 3
    code = (
        "import time; from triloop.store import migrator, schema; "
        f"time.sleep(max(0.0, {start} - time.time())); schema.upgrade({url!r})"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(procs), errors
    assert revisions(url) == {HEAD}
    assert schema_diff(url) == []


def test_database_made_by_create_all_is_stamped_then_upgraded(url: str) -> None:
    # What create_all made before migrations existed: the baseline's tables, no version table.
    with migration_transaction(engine_for(url)) as conn:
        command.upgrade(migrator.alembic_config(url, conn), migrator.BASELINE)
        conn.exec_driver_sql(f"DROP TABLE {VERSION_TABLE}")
    add_repo(url, "legacy")
    assert VERSION_TABLE not in inspect(engine_for(url)).get_table_names()
    upgrade(url)
    assert revisions(url) == {HEAD}
    assert schema_diff(url) == []
    assert repo_ids(url) == ["legacy"]


def test_downgrade_to_base_and_upgrade_again(url: str) -> None:
    upgrade(url)
    add_repo(url, "dropped")
    migrator.downgrade(url, "base")
    assert set(inspect(engine_for(url)).get_table_names()) <= {VERSION_TABLE}
    assert revisions(url) == frozenset()
    upgrade(url)
    assert revisions(url) == {HEAD}
    assert schema_diff(url) == []
    assert repo_ids(url) == []


@pytest.mark.parametrize(
    ("prepare", "match"),
    [
        (
            "CREATE TABLE repos (id VARCHAR(64) PRIMARY KEY)",
            r"no alembic_version table and only some of Triloop's tables \(has repos; lacks",
        ),
        (
            "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);"
            "INSERT INTO alembic_version VALUES ('9999')",
            r"at revision 9999, which this Triloop does not know",
        ),
    ],
    ids=["half-made-by-create-all", "migrated-by-a-newer-triloop"],
)
def test_databases_upgrade_cannot_fix_are_refused(url: str, prepare: str, match: str) -> None:
    with engine_for(url).begin() as conn:
        for statement in prepare.split(";"):
            conn.exec_driver_sql(statement)
    before = table_sql(url)
    with pytest.raises(SchemaError, match=match):
        upgrade(url)
    assert table_sql(url) == before


@pytest.fixture
def pg_url(postgres_server: Any) -> Iterator[str]:
    name = postgres_server.create_database("mig")
    url = postgres_server.url(name)
    yield url
    engine_for(url).dispose()
    postgres_server.drop_database(name)


def test_postgresql_upgrade_matches_the_models_and_downgrades(pg_url: str) -> None:
    upgrade(pg_url)
    assert revisions(pg_url) == {HEAD}
    assert schema_diff(pg_url) == []
    add_repo(pg_url, "kept")
    upgrade(pg_url)
    assert repo_ids(pg_url) == ["kept"]
    migrator.downgrade(pg_url, "base")
    assert set(inspect(engine_for(pg_url)).get_table_names()) <= {VERSION_TABLE}
