"""Concurrent claimer processes on a real database: each ticket claimed exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from triloop.store.db import engine_for

from tests.bench.bench_claims import race


@pytest.mark.parametrize("batch", [1, 5])
def test_claimers_on_postgresql_take_each_ticket_exactly_once(
    postgres_server: Any, batch: int
) -> None:
    name = postgres_server.create_database("race")
    try:
        result = race(postgres_server.url(name), tickets=400, workers=8, batch=batch)
    finally:
        engine_for(postgres_server.url(name)).dispose()
        postgres_server.drop_database(name)
    assert (result.duplicates, result.lost) == (0, 0)
    assert result.db_claimed == result.ledger_claims == 400
    assert result.db_attempts_above_one == 0


def test_claimers_on_sqlite_take_each_ticket_exactly_once(db_url: str) -> None:
    result = race(db_url, tickets=200, workers=6, batch=3)
    assert (result.duplicates, result.lost) == (0, 0)
    assert result.db_claimed == result.ledger_claims == 200
