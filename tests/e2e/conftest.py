"""End-to-end fixtures: a migrated Airflow metadata DB and a fresh Triloop home per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """``airflow db migrate`` once for the session's AIRFLOW_HOME (SQLite)."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, timeout=300)
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture
def factory(
    airflow_db: str,
    sandbox_image: str,
    triloop_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    """The four DAGs, ready to run with ``dag.test()`` against a fresh Triloop DB."""
    url = f"sqlite:///{triloop_home / 'triloop.db'}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRILOOP_DB",
        json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": url}}),
    )
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    yield dict(bag.dags)
