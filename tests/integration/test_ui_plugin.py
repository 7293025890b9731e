"""The Triloop page in the Airflow UI, served by Airflow's own API server app.

The API server app is built as ``airflow api-server`` builds it (``create_app``), with the
plugins folder tests/conftest.py points Airflow at, so these tests cover discovery, the mount
under ``/triloop``, the auth dependency and the page against a real Triloop database.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from triloop.bootstrap import App
from triloop.store import breaker as breaker_store
from triloop.store.ledger import Actor
from triloop.store.models import HarnessRun, Ticket

from tests.support.rows import add_ticket

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> & \"quoted\" 'single'"
TRIP_REASON = "3 failed harness runs in a row (last: agent crashed <b>hard</b>)"


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    """Airflow's API server app; its metadata DB migrated (token checks read revoked_token).

    Tokens are signed with a key of this test's own: a fresh AIRFLOW_HOME has none until
    something writes airflow.cfg, and this process read its config before that.
    """
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(32))
        yield from _api_app()


def _api_app() -> Iterator[TestClient]:
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    from airflow.api_fastapi.app import create_app

    with TestClient(create_app()) as client:
        yield client


@pytest.fixture
def token(api: TestClient) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(
        get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="ops", role="viewer"))
    )


@pytest.fixture
def factory(app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    """The page reads ``app``'s database through connection triloop_db (TRILOOP_HOME points
    at an empty home, so reading the fallback instead would show none of these rows)."""
    extra = {"sqlalchemy_url": app.settings.db_url}
    conn = json.dumps({"conn_type": "generic", "extra": extra})
    monkeypatch.setenv("AIRFLOW_CONN_TRILOOP_DB", conn)
    monkeypatch.setenv("TRILOOP_HOME", str(tmp_path / "elsewhere"))
    add_ticket(app, "T-ready", repo_id="shop")
    add_ticket(app, "T-dead", state="dead_letter", repo_id="shop")
    add_ticket(app, "T-human", state="needs_human", repo_id="shop")
    with app.uow() as session:
        dead = session.get_one(Ticket, "T-dead")
        dead.title, dead.last_error = HOSTILE, "autofix made no change <3 times>"
        session.get_one(Ticket, "T-human").last_error = "tokens: 13812 used of 6000"
        session.add(
            HarnessRun(
                ticket_id="T-human",
                repo_id="shop",
                harness="mini-swe-agent",
                attempt=1,
                status="over_budget",
                cost_usd=1.25,
                run_owner="triloop_execution/r1",
                finished_at=datetime.now(UTC),
            )
        )
        row = breaker_store.load(session)
        actor = Actor(name="airflow:x", dag_id="triloop_execution", run_id="r1", task_id="finish")
        breaker_store.move(session, row, "trip", TRIP_REASON, actor)
    return app


def _get(api: TestClient, path: str, token: str) -> Any:
    response = api.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response


def test_page_shows_the_open_breaker_spend_and_dead_letters_escaped(
    api: TestClient, token: str, factory: App
) -> None:
    response = _get(api, "/triloop/", token)
    page = response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert '<span class="badge open">open</span> execution is paused' in page
    assert "3 failed harness runs in a row (last: agent crashed &lt;b&gt;hard&lt;/b&gt;)" in page
    assert "half-opens at" in page
    limits = factory.policy.budgets
    assert f"1.25 of {limits.global_daily_cost_usd:.2f} USD" in page
    assert f'<td>shop</td><td class="num">1.25 of {limits.repo_daily_cost_usd:.2f} USD' in page
    assert "Dead letters (1)" in page and "T-dead" in page
    assert "autofix made no change &lt;3 times&gt;" in page
    assert "Needs a human (1)" in page and "tokens: 13812 used of 6000" in page
    assert "breaker.trip" in page  # the latest ledger rows
    # The hostile title is text, never markup: no script or element reaches the page.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&amp; &quot;quoted&quot; &#x27;single&#x27;" in page
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "src=x onerror" not in page.replace("&lt;img src=x onerror", "")


def test_json_endpoint_has_the_same_data(api: TestClient, token: str, factory: App) -> None:
    data = _get(api, "/triloop/status.json", token).json()
    assert data["schema_version"] == 1
    assert data["breaker"]["state"] == "open" and data["breaker"]["reason"] == TRIP_REASON
    assert data["breaker"]["half_opens_at"] > data["breaker"]["opened_at"]
    assert data["spend"]["total_usd"] == 1.25 and data["spend"]["per_repo_usd"] == {"shop": 1.25}
    assert data["tickets_by_state"] == {"dead_letter": 1, "needs_human": 1, "ready": 1}
    assert [(t["id"], t["title"]) for t in data["dead_letters"]] == [("T-dead", HOSTILE)]
    assert [t["id"] for t in data["needs_human"]] == ["T-human"]
    assert data["ledger"][0]["action"] == "breaker.trip"
    assert data["ledger"][0]["move"] == "closed->open"


def test_a_connection_without_a_url_is_a_503_naming_it(
    api: TestClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TRILOOP_DB", json.dumps({"conn_type": "generic"}))
    for path in ("/triloop/", "/triloop/status.json"):
        response = api.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503
        assert "PermanentError: connection" in response.text
        assert "triloop_db" in response.text and "has no" in response.text


@pytest.mark.parametrize("path", ["/triloop/", "/triloop/status.json"])
@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({}, 401, "Not authenticated"),
        ({"Authorization": "Bearer not-a-jwt"}, 403, "Invalid JWT token"),
    ],
)
def test_anonymous_and_forged_callers_are_refused(
    api: TestClient, path: str, headers: dict[str, str], status: int, detail: str
) -> None:
    response = api.get(path, headers=headers)
    assert (response.status_code, response.json()["detail"]) == (status, detail)


def test_the_ui_session_cookie_is_enough(api: TestClient, token: str, factory: App) -> None:
    """What the browser sends to the page inside the UI's iframe: the ``_token`` cookie."""
    api.cookies.set("_token", token)
    try:
        response = api.get("/triloop/status.json")
    finally:
        api.cookies.clear()
    assert response.status_code == 200 and response.json()["breaker"]["state"] == "open"


def test_plugin_manager_discovers_and_registers_the_plugin(api: TestClient, token: str) -> None:
    from airflow import plugins_manager

    plugins, errors = plugins_manager._get_plugins()
    [plugin] = [p for p in plugins if p.name == "triloop"]
    assert str(plugin.source).startswith("$PLUGINS_FOLDER/triloop_ui_plugin.py")
    assert not [path for path in errors if str(ROOT / "plugins") in path]
    apps, _ = plugins_manager.get_fastapi_plugins()
    assert [a["url_prefix"] for a in apps if a["name"] == "Triloop"] == ["/triloop"]
    views, _ = plugins_manager._get_ui_plugins()
    [view] = [v for v in views if v["url_route"] == "triloop"]
    assert (view["href"], view["destination"], view["category"]) == ("triloop/", "nav", "browse")
    # What the UI reads to build its menu.
    listed = _get(api, "/api/v2/plugins", token).json()["plugins"]
    [entry] = [p for p in listed if p["name"] == "triloop"]
    assert entry["external_views"][0]["url_route"] == "triloop"
    assert entry["fastapi_apps"][0]["url_prefix"] == "/triloop"
    # Package modules are imported by package name only, never again by file stem.
    package = ROOT / "plugins" / "triloop_airflow"
    stems = {path.stem for path in package.glob("*.py")}
    assert not [
        name for name in stems if name in sys.modules and _file_of(name).startswith(str(package))
    ]


def _file_of(module: str) -> str:
    return str(getattr(sys.modules[module], "__file__", "") or "")


def test_loading_plugins_imports_no_web_server_code() -> None:
    """Task processes load plugins too: the app and the API server's modules wait for the
    first request."""
    probe = (
        "import sys\n"
        "from airflow import plugins_manager\n"
        "plugins, errors = plugins_manager._get_plugins()\n"
        "assert 'triloop' in [p.name for p in plugins], errors\n"
        "print(sorted(m for m in ('fastapi', 'airflow.api_fastapi.core_api.security',"
        " 'triloop.status', 'triloop_airflow.ui_html') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT / 'include'}"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
