"""Suite-wide setup: an isolated Airflow home and Triloop home, and the plugins on sys.path.

Airflow reads its configuration when first imported, so the environment is set here, at
collection time, before any test module imports it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="triloop-tests-"))

os.environ.setdefault("AIRFLOW_HOME", str(_SESSION_HOME / "airflow"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("TRILOOP_HOME", str(_SESSION_HOME / "triloop"))
for extra in (ROOT / "plugins", ROOT / "dags"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


@pytest.fixture
def triloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh TRILOOP_HOME (SQLite DB, forge, workspaces) for one test."""
    home = tmp_path / "triloop"
    monkeypatch.setenv("TRILOOP_HOME", str(home))
    monkeypatch.delenv("TRILOOP_DB_URL", raising=False)
    yield home


@pytest.fixture
def app(triloop_home: Path):  # type: ignore[no-untyped-def]
    from triloop.bootstrap import bootstrap

    return bootstrap(home=triloop_home)
