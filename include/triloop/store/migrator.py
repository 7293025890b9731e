"""Alembic, driven from code: the migration steps behind :func:`triloop.store.schema.upgrade`.

Imports Alembic (~100 ms), so :mod:`triloop.store.schema` imports this only when a database is
behind. The config is built in memory: no alembic.ini, the URL passed in, the scripts in the
``migrations`` package beside this module, so they ship with ``triloop``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from triloop.store.db import engine_for
from triloop.store.schema import (
    VERSION_TABLE,
    SchemaError,
    current_revisions,
    migration_transaction,
)

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

BASELINE = "0001"
"""The revision a database made by ``create_all`` (Triloop before migrations) is at."""

BASELINE_TABLES = frozenset(
    {"repos", "scans", "tickets", "pull_requests", "checks", "decisions", "effects", "ledger"}
)
"""The tables ``create_all`` made before migrations existed; all present means stamp BASELINE."""


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """An in-memory Alembic config for ``url``; ``connection`` is the one migrations run on."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # The config is a ConfigParser: a literal % (URL-encoded passwords) must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def script() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS_DIR))


def head_revisions() -> frozenset[str]:
    """The newest revision(s) in the scripts (one unless branches were left unmerged)."""
    return frozenset(script().get_heads())


def migrate(conn: Connection, url: str) -> None:
    """Upgrade to head on ``conn``, which must hold the migration lock (migration_transaction).

    Looks again under the lock: another process may have migrated while this one waited.
    """
    current = current_revisions(conn)
    known = {rev.revision for rev in script().walk_revisions()}
    if unknown := current - known:
        raise SchemaError(
            f"database {url} is at revision {', '.join(sorted(unknown))}, which this Triloop "
            f"does not know (its newest is {', '.join(sorted(head_revisions()))}): "
            "a newer Triloop migrated it"
        )
    if current == head_revisions():
        return
    config = alembic_config(url, conn)
    if not current and _made_by_create_all(conn, url):
        log.info("database %s predates migrations: stamping it at %s", url, BASELINE)
        command.stamp(config, BASELINE)
    log.info("migrating database %s from %s to head", url, ", ".join(sorted(current)) or "empty")
    command.upgrade(config, "head")


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"`` drops every table)."""
    with migration_transaction(engine_for(url)) as conn:
        command.downgrade(alembic_config(url, conn), revision)


def _made_by_create_all(conn: Connection, url: str) -> bool:
    present = BASELINE_TABLES & set(inspect(conn).get_table_names())
    if present and present != BASELINE_TABLES:
        raise SchemaError(
            f"database {url} has no {VERSION_TABLE} table and only some of Triloop's tables "
            f"(has {', '.join(sorted(present))}; lacks "
            f"{', '.join(sorted(BASELINE_TABLES - present))}): repair or empty it by hand"
        )
    return bool(present)
