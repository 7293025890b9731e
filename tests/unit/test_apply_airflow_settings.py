"""Parsing, expansion and validation of airflow_settings.yaml (no Airflow database needed)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "apply_airflow_settings", ROOT / "scripts/apply_airflow_settings.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


settings_module = _load_script()
SettingsError = settings_module.SettingsError
load_settings = settings_module.load_settings
expand = settings_module.expand

ENV = {"TRILOOP_HOME": "/srv/triloop", "TRILOOP_PROJECT_ROOT": "/opt/triloop"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(text)
    return path


def test_the_shipped_file_declares_what_the_dags_need() -> None:
    settings = load_settings(ROOT / "airflow_settings.yaml", env=ENV)

    conns = {c.conn_id: c for c in settings.connections}
    assert json.loads(conns["triloop_db"].extra or "{}") == {
        "sqlalchemy_url": "sqlite:////srv/triloop/triloop.db"
    }
    assert conns["triloop_db"].conn_type == "generic"
    variables = {v.key: v.value for v in settings.variables}
    assert variables == {
        "triloop_sandbox_image": "triloop-sandbox:latest",
        "triloop_policy_path": "/opt/triloop/include/policy/default.yaml",
    }
    assert {p.name: p.slots for p in settings.pools} == {"triloop_sandbox": 2, "triloop_forge": 4}
    assert (ROOT / "include/policy/default.yaml").exists()


def test_the_shipped_file_follows_overrides_from_the_environment() -> None:
    env = {
        **ENV,
        "TRILOOP_DB_URL": "postgresql+psycopg2://t:s@db/triloop",
        "TRILOOP_SANDBOX_IMAGE": "registry.local/sandbox:1",
    }
    settings = load_settings(ROOT / "airflow_settings.yaml", env=env)

    assert json.loads(settings.connections[0].extra or "{}")["sqlalchemy_url"] == (
        "postgresql+psycopg2://t:s@db/triloop"
    )
    assert settings.variables[0].value == "registry.local/sandbox:1"


def test_project_root_defaults_to_the_folder_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRILOOP_PROJECT_ROOT", raising=False)
    path = _write(
        tmp_path,
        "airflow:\n  variables:\n"
        "    - {variable_name: p, variable_value: '${TRILOOP_PROJECT_ROOT}/x'}\n",
    )

    assert load_settings(path).variables[0].value == f"{tmp_path.resolve()}/x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "alpha"),
        ("pre-${A}-post", "pre-alpha-post"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY}", ""),
        ("${MISSING:-${A}/db}", "alpha/db"),
        ("${MISSING:-}", ""),
        ("$${A}", "${A}"),
        ("pa$$word $A", "pa$$word $A"),
        ("{not: a reference}", "{not: a reference}"),
    ],
)
def test_expansion(text: str, expected: str) -> None:
    env = {"A": "alpha", "EMPTY": ""}

    assert expand(text, env, path=Path("s.yaml"), key="k") == expected


def test_every_value_kind_is_parsed(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
airflow:
  connections:
    - conn_id: pg
      conn_type: postgres
      conn_host: ${HOST}
      conn_login: triloop
      conn_password: "p$ss"
      conn_port: 5432
      conn_schema: triloop
      conn_extra: '{"sslmode": "require"}'
    - conn_id:
      conn_type:
      conn_host:
  variables:
    - variable_name: limits
      variable_value: {max_prs: 3, paths: ["${HOST}"]}
    - variable_name: empty
      variable_value:
  pools:
    - pool_name: p
      pool_slot: "${SLOTS}"
    - pool_name: unlimited
      pool_slot: -1
      pool_description: no limit
""",
    )

    settings = load_settings(path, env={"HOST": "db.local", "SLOTS": "3"})

    assert len(settings.connections) == 1  # the all-empty placeholder is skipped
    pg = settings.connections[0]
    assert (pg.host, pg.login, pg.password, pg.port, pg.schema) == (
        "db.local",
        "triloop",
        "p$ss",
        5432,
        "triloop",
    )
    assert json.loads(pg.extra or "") == {"sslmode": "require"}
    assert json.loads(settings.variables[0].value) == {"max_prs": 3, "paths": ["db.local"]}
    assert settings.variables[1].value == ""
    assert [(p.name, p.slots, p.description) for p in settings.pools] == [
        ("p", 3, ""),
        ("unlimited", -1, "no limit"),
    ]


@pytest.mark.parametrize("text", ["", "# nothing\n", "airflow:\n", "airflow: {connections: []}\n"])
def test_an_empty_file_declares_nothing(tmp_path: Path, text: str) -> None:
    settings = load_settings(_write(tmp_path, text), env={})

    assert (settings.connections, settings.variables, settings.pools) == ((), (), ())


def _conn(body: str) -> str:
    return f"airflow:\n  connections:\n    - {body}\n"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("airflow: [\n", "", "is not valid YAML"),
        ("- a\n- b\n", "", "must be a mapping with an 'airflow' key, not a list"),
        ("airflow: {}\nastro: {}\n", "astro", "unknown top-level key"),
        ("airflow: [1]\n", "airflow", "must be a mapping, not a list"),
        ("airflow:\n  secrets: []\n", "airflow.secrets", "unknown section"),
        ("airflow:\n  pools: {a: 1}\n", "airflow.pools", "must be a list, not a dict"),
        ("airflow:\n  pools: [triloop]\n", "airflow.pools[0]", "must be a mapping, not a str"),
        (
            _conn("{conn_id: a, conn_type: http, conn_hots: x}"),
            "connections[0].conn_hots",
            "unknown key",
        ),
        (_conn("{conn_type: http, conn_host: x}"), "connections[0].conn_id", "is required"),
        (_conn("{conn_id: a, conn_type: ' '}"), "connections[0].conn_type", "must not be empty"),
        (_conn("{conn_id: 'a b', conn_type: http}"), "connections[0].conn_id", "characters"),
        (_conn("{conn_id: a, conn_type: [x]}"), "connections[0].conn_type", "must be text"),
        (_conn("{conn_id: a, conn_type: http, conn_port: 99999}"), "conn_port", "not a port"),
        (_conn("{conn_id: a, conn_type: http, conn_port: http}"), "conn_port", "not a port"),
        (_conn("{conn_id: a, conn_type: http, conn_extra: '{x'}"), "conn_extra", "not valid JSON"),
        (_conn("{conn_id: a, conn_type: http, conn_extra: '[1]'}"), "conn_extra", "JSON object"),
        (
            _conn("{conn_id: a, conn_type: http, conn_extra: [1]}"),
            "conn_extra",
            "mapping or a JSON",
        ),
        (_conn("{conn_id: a, conn_type: '${NOPE}'}"), "conn_type", r"\$\{NOPE\} is not set"),
        (_conn("{conn_id: a, conn_type: '${1X}'}"), "conn_type", "bad reference"),
        (_conn("{conn_id: a, conn_type: 'x${A'}"), "conn_type", "unclosed reference"),
        (
            "airflow:\n  connections:\n    - {conn_id: a, conn_type: http}\n"
            "    - {conn_id: a, conn_type: ftp}\n",
            "airflow.connections[1].conn_id",
            "duplicate conn_id 'a'",
        ),
        (
            "airflow:\n  variables:\n    - {variable_name: v}\n",
            "airflow.variables[0].variable_value",
            "is required",
        ),
        (
            "airflow:\n  variables:\n    - {variable_name: v, variable_value: '${NOPE}'}\n",
            "variable_value",
            "is not set",
        ),
        ("airflow:\n  pools:\n    - {pool_name: p}\n", "pools[0].pool_slot", "is required"),
        ("airflow:\n  pools:\n    - {pool_name: p, pool_slot: -2}\n", "pool_slot", "not a slot"),
        ("airflow:\n  pools:\n    - {pool_name: p, pool_slot: true}\n", "pool_slot", "not a slot"),
        ("airflow:\n  pools:\n    - {pool_name: p, pool_slot: two}\n", "pool_slot", "not a slot"),
        ("airflow:\n  pools:\n    - {pool_name: p, pool_slot: 1.5}\n", "pool_slot", "not a slot"),
    ],
)
def test_a_bad_file_is_rejected_naming_the_file_and_the_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = _write(tmp_path, text)

    with pytest.raises(SettingsError, match=re.escape(str(path))) as raised:
        load_settings(path, env={"A": "x"})

    assert key in raised.value.key, raised.value
    assert re.search(problem, str(raised.value)), raised.value


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"nowhere\.yaml: cannot read the file"):
        load_settings(tmp_path / "nowhere.yaml", env={})


def test_check_mode_validates_without_airflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(tmp_path, "airflow:\n  pools:\n    - {pool_name: p, pool_slot: 1}\n")

    assert settings_module.main(["--check", str(good)]) == 0
    assert "ok (0 connections, 0 variables, 1 pools)" in capsys.readouterr().out

    good.write_text("airflow:\n  pools:\n    - {pool_name: p}\n")
    assert settings_module.main(["--check", str(good)]) == 2
    assert re.search(
        r"error: .*airflow_settings\.yaml: .*pool_slot: is required", capsys.readouterr().err
    )
