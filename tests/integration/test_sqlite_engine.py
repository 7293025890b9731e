"""The SQLite engine on real files, with real processes racing for its locks."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from triloop.store.db import engine_for


def _open_and_write(url: str, start: float, worker: int) -> None:
    time.sleep(max(0.0, start - time.time()))
    with engine_for(url).begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS hits (worker INTEGER)"))
        conn.execute(text("INSERT INTO hits VALUES (:w)"), {"w": worker})


@pytest.mark.parametrize("attempt", range(12))
def test_processes_opening_a_new_file_at_once_all_get_in(tmp_path: Path, attempt: int) -> None:
    # The first connections to a new file race to switch it to WAL; SQLite answers the losers
    # "database is locked" without waiting, so the engine must retry rather than fail.
    url = f"sqlite:///{tmp_path / f'race-{attempt}.db'}"
    start = time.time() + 0.5
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_open_and_write, args=(url, start, n)) for n in range(6)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * len(procs)
    with engine_for(url).connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        workers = conn.execute(text("SELECT worker FROM hits ORDER BY worker")).scalars()
        assert list(workers) == list(range(6))
