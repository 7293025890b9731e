"""Apply ``airflow_settings.yaml`` (Astro CLI format) to the Airflow metadata database.

Airflow does not read ``airflow_settings.yaml`` itself: the Astro CLI does, and ``make up`` does
through this script. The file declares connections, variables and pools::

    airflow:
      connections:
        - conn_id: triloop_db
          conn_type: generic
          conn_extra: {sqlalchemy_url: "sqlite:///${TRILOOP_HOME}/triloop.db"}
      variables:
        - variable_name: triloop_sandbox_image
          variable_value: triloop-sandbox:latest
      pools:
        - pool_name: triloop_sandbox
          pool_slot: 2
          pool_description: Sandbox containers

Loading (:func:`load_settings`) is pure: it parses, validates and expands ``${NAME}`` and
``${NAME:-default}`` references from the environment (``$${`` keeps a literal ``${``), and
rejects a bad file with a :class:`SettingsError` that names the file and the key, before anything
is written. Applying (:func:`apply_settings`) upserts every item, so running it again changes
nothing; the file is the source of truth, so it also resets values edited in the UI.

Usage: ``python scripts/apply_airflow_settings.py [--check] [PATH]`` (default: the
``airflow_settings.yaml`` beside ``scripts/``). ``--check`` validates without touching Airflow.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = PROJECT_ROOT / "airflow_settings.yaml"

_CONNECTION_KEYS = {
    "conn_id",
    "conn_type",
    "conn_host",
    "conn_schema",
    "conn_login",
    "conn_password",
    "conn_port",
    "conn_extra",
    "conn_description",
}
_VARIABLE_KEYS = {"variable_name", "variable_value", "variable_description"}
_POOL_KEYS = {"pool_name", "pool_slot", "pool_description"}
_SECTIONS = ("connections", "variables", "pools")
_CONN_ID = re.compile(r"^[\w#!()\-.:/\\]{1,250}$")
_NAME_AND_DEFAULT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)


class SettingsError(ValueError):
    """The settings file is missing, unreadable or invalid; names the file and the key."""

    def __init__(self, path: Path, key: str, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(where + problem)


class ApplyError(RuntimeError):
    """Airflow's database holds something this script cannot reconcile; says what to do."""


@dataclass(frozen=True)
class ConnectionSpec:
    """One Airflow connection, fields named as on ``airflow.models.Connection``."""

    conn_id: str
    conn_type: str
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: str | None = None
    """A JSON object, as text (Airflow stores it that way)."""
    description: str | None = None


@dataclass(frozen=True)
class VariableSpec:
    """One Airflow variable; the value is always text (JSON for mappings and lists)."""

    key: str
    value: str
    description: str | None = None


@dataclass(frozen=True)
class PoolSpec:
    """One Airflow pool; ``slots`` of -1 means unlimited."""

    name: str
    slots: int
    description: str = ""


@dataclass(frozen=True)
class AirflowSettings:
    """Everything one settings file declares, validated and expanded."""

    path: Path
    connections: tuple[ConnectionSpec, ...] = field(default_factory=tuple)
    variables: tuple[VariableSpec, ...] = field(default_factory=tuple)
    pools: tuple[PoolSpec, ...] = field(default_factory=tuple)


def default_environment(path: Path) -> dict[str, str]:
    """The process environment, plus TRILOOP_PROJECT_ROOT (the settings file's folder) if unset."""
    env = dict(os.environ)
    env.setdefault("TRILOOP_PROJECT_ROOT", str(path.resolve().parent))
    return env


def expand(text: str, env: Mapping[str, str], *, path: Path, key: str) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` with values from ``env``.

    The default may itself hold references (``${A:-${B}/x}``). ``$${...}`` stays as a literal
    ``${...}``. A bare ``$NAME`` is left alone, so passwords containing ``$`` survive. An unset
    name without a default, or an unclosed reference, raises :class:`SettingsError`.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i):
            close = _closing_brace(text, i + 2, path=path, key=key)
            out.append(text[i + 1 : close + 1])
            i = close + 1
        elif text.startswith("${", i):
            close = _closing_brace(text, i + 1, path=path, key=key)
            out.append(_resolve(text[i + 2 : close], env, path=path, key=key))
            i = close + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _closing_brace(text: str, opening: int, *, path: Path, key: str) -> int:
    depth = 0
    for index in range(opening, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise SettingsError(path, key, f"unclosed reference in {text!r}: expected ${{NAME}}")


def _resolve(body: str, env: Mapping[str, str], *, path: Path, key: str) -> str:
    parsed = _NAME_AND_DEFAULT.match(body)
    if parsed is None:
        raise SettingsError(path, key, f"bad reference ${{{body}}}: expected ${{NAME}}")
    name, default = parsed.group(1), parsed.group(2)
    value = env.get(name)
    if value is None or (value == "" and default is not None):
        if default is None:
            raise SettingsError(
                path, key, f"${{{name}}} is not set in the environment (or use ${{{name}:-x}})"
            )
        return expand(default, env, path=path, key=key)
    return value


def load_settings(
    path: Path | str = DEFAULT_PATH, env: Mapping[str, str] | None = None
) -> AirflowSettings:
    """Parse, validate and expand a settings file; raise :class:`SettingsError` if it is bad."""
    path = Path(path)
    environment = default_environment(path) if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(path, "", f"cannot read the file ({exc.strerror or exc})") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(path, "", f"is not valid YAML ({exc})") from exc
    if document is None:
        return AirflowSettings(path=path)
    if not isinstance(document, dict):
        raise SettingsError(
            path, "", f"must be a mapping with an 'airflow' key, not {_kind(document)}"
        )
    unknown = sorted(str(k) for k in document if k != "airflow")
    if unknown:
        raise SettingsError(path, unknown[0], "unknown top-level key (only 'airflow' is allowed)")
    airflow = document.get("airflow")
    if airflow is None:
        return AirflowSettings(path=path)
    if not isinstance(airflow, dict):
        raise SettingsError(path, "airflow", f"must be a mapping, not {_kind(airflow)}")
    for name in airflow:
        if name not in _SECTIONS:
            raise SettingsError(
                path, f"airflow.{name}", f"unknown section (expected one of {', '.join(_SECTIONS)})"
            )
    parser = _Parser(path, environment)
    connections = tuple(
        parser.connection(f"airflow.connections[{i}]", item)
        for i, item in parser.entries(
            "airflow.connections", airflow.get("connections"), _CONNECTION_KEYS
        )
    )
    variables = tuple(
        parser.variable(f"airflow.variables[{i}]", item)
        for i, item in parser.entries("airflow.variables", airflow.get("variables"), _VARIABLE_KEYS)
    )
    pools = tuple(
        parser.pool(f"airflow.pools[{i}]", item)
        for i, item in parser.entries("airflow.pools", airflow.get("pools"), _POOL_KEYS)
    )
    _reject_duplicates(path, "airflow.connections", "conn_id", [c.conn_id for c in connections])
    _reject_duplicates(path, "airflow.variables", "variable_name", [v.key for v in variables])
    _reject_duplicates(path, "airflow.pools", "pool_name", [p.name for p in pools])
    return AirflowSettings(path=path, connections=connections, variables=variables, pools=pools)


def _kind(value: object) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


def _reject_duplicates(path: Path, section: str, key: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise SettingsError(path, f"{section}[{index}].{key}", f"duplicate {key} {name!r}")
        seen.add(name)


class _Parser:
    """Turns raw YAML entries into specs; every error names ``path`` and the dotted key."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env

    def entries(
        self, section: str, raw: object, allowed: set[str]
    ) -> list[tuple[int, dict[str, Any]]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise SettingsError(self.path, section, f"must be a list, not {_kind(raw)}")
        result = []
        for index, item in enumerate(raw):
            where = f"{section}[{index}]"
            if not isinstance(item, dict):
                raise SettingsError(self.path, where, f"must be a mapping, not {_kind(item)}")
            for key in item:
                if key not in allowed:
                    raise SettingsError(
                        self.path,
                        f"{where}.{key}",
                        f"unknown key (expected one of {', '.join(sorted(allowed))})",
                    )
            if all(value is None for value in item.values()):
                continue  # an empty placeholder, as in the Astro CLI's template
            result.append((index, item))
        return result

    def text(
        self, where: str, item: Mapping[str, Any], key: str, *, required: bool = False
    ) -> str | None:
        value = item.get(key)
        if value is None:
            if required:
                raise SettingsError(self.path, f"{where}.{key}", "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise SettingsError(self.path, f"{where}.{key}", f"must be text, not {_kind(value)}")
        expanded = expand(str(value), self.env, path=self.path, key=f"{where}.{key}")
        if required and not expanded.strip():
            raise SettingsError(self.path, f"{where}.{key}", "must not be empty")
        return expanded

    def deep_expand(self, where: str, value: Any) -> Any:
        if isinstance(value, str):
            return expand(value, self.env, path=self.path, key=where)
        if isinstance(value, dict):
            return {str(k): self.deep_expand(f"{where}.{k}", v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep_expand(f"{where}[{i}]", v) for i, v in enumerate(value)]
        return value

    def connection(self, where: str, item: Mapping[str, Any]) -> ConnectionSpec:
        conn_id = self.text(where, item, "conn_id", required=True)
        assert conn_id is not None
        if not _CONN_ID.match(conn_id):
            raise SettingsError(
                self.path, f"{where}.conn_id", f"{conn_id!r} has characters Airflow does not allow"
            )
        conn_type = self.text(where, item, "conn_type", required=True)
        assert conn_type is not None
        return ConnectionSpec(
            conn_id=conn_id,
            conn_type=conn_type,
            host=self.text(where, item, "conn_host"),
            schema=self.text(where, item, "conn_schema"),
            login=self.text(where, item, "conn_login"),
            password=self.text(where, item, "conn_password"),
            port=self.port(where, item),
            extra=self.extra(where, item),
            description=self.text(where, item, "conn_description"),
        )

    def port(self, where: str, item: Mapping[str, Any]) -> int | None:
        raw = item.get("conn_port")
        if raw is None:
            return None
        text = self.text(where, item, "conn_port")
        if text is None or text.strip() == "":
            return None
        if isinstance(raw, float) or not text.strip().isdigit() or not 0 < int(text) < 65536:
            raise SettingsError(
                self.path, f"{where}.conn_port", f"{text!r} is not a port (1-65535)"
            )
        return int(text)

    def extra(self, where: str, item: Mapping[str, Any]) -> str | None:
        raw = item.get("conn_extra")
        key = f"{where}.conn_extra"
        if raw is None:
            return None
        if isinstance(raw, dict):
            return json.dumps(self.deep_expand(key, raw), sort_keys=True)
        if isinstance(raw, str):
            text = expand(raw, self.env, path=self.path, key=key)
            if not text.strip():
                return None
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SettingsError(self.path, key, f"is not valid JSON ({exc.msg})") from exc
            if not isinstance(parsed, dict):
                raise SettingsError(self.path, key, "must be a JSON object")
            return json.dumps(parsed, sort_keys=True)
        raise SettingsError(self.path, key, f"must be a mapping or a JSON string, not {_kind(raw)}")

    def variable(self, where: str, item: Mapping[str, Any]) -> VariableSpec:
        name = self.text(where, item, "variable_name", required=True)
        assert name is not None
        if "variable_value" not in item:
            raise SettingsError(self.path, f"{where}.variable_value", "is required")
        raw = item["variable_value"]
        key = f"{where}.variable_value"
        if raw is None:
            value = ""
        elif isinstance(raw, str):
            value = expand(raw, self.env, path=self.path, key=key)
        else:
            value = json.dumps(self.deep_expand(key, raw))
        description = self.text(where, item, "variable_description")
        return VariableSpec(key=name, value=value, description=description)

    def pool(self, where: str, item: Mapping[str, Any]) -> PoolSpec:
        name = self.text(where, item, "pool_name", required=True)
        assert name is not None
        raw = item.get("pool_slot")
        key = f"{where}.pool_slot"
        if raw is None:
            raise SettingsError(self.path, key, "is required")
        if isinstance(raw, str):
            raw = expand(raw, self.env, path=self.path, key=key).strip()
            raw = int(raw) if re.fullmatch(r"-?\d+", raw) else raw
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < -1:
            raise SettingsError(self.path, key, f"{raw!r} is not a slot count (an integer >= -1)")
        description = self.text(where, item, "pool_description") or ""
        return PoolSpec(name=name, slots=raw, description=description)


def apply_settings(settings: AirflowSettings) -> list[str]:
    """Upsert every connection, variable and pool; return one report line per item.

    Needs a configured Airflow (``AIRFLOW_HOME``, a migrated metadata database). Runs in one
    database transaction: either everything is applied or nothing is.
    """
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from cryptography.fernet import InvalidToken
    from sqlalchemy import select

    report: list[str] = []
    with create_session() as session:
        for conn in settings.connections:
            wanted: dict[str, Any] = {
                "conn_type": conn.conn_type,
                "host": conn.host,
                "schema": conn.schema,
                "login": conn.login,
                "password": conn.password,
                "port": conn.port,
                "extra": conn.extra,
                "description": conn.description,
            }
            row = session.scalar(select(Connection).where(Connection.conn_id == conn.conn_id))
            if row is None:
                session.add(Connection(conn_id=conn.conn_id, **wanted))
                report.append(f"connection {conn.conn_id}: created")
                continue
            try:
                changed = [name for name, value in wanted.items() if getattr(row, name) != value]
            except InvalidToken as exc:
                raise ApplyError(
                    f"connection {conn.conn_id} was encrypted with another Fernet key: set "
                    "AIRFLOW__CORE__FERNET_KEY to the key that wrote it, or delete it with "
                    f"`airflow connections delete {conn.conn_id}` and apply again"
                ) from exc
            for name in changed:
                setattr(row, name, wanted[name])
            report.append(_outcome("connection", conn.conn_id, changed))
        for var in settings.variables:
            existing = session.scalar(select(Variable).where(Variable.key == var.key))
            if existing is not None and (existing.val, existing.description) == (
                var.value,
                var.description,
            ):
                report.append(f"variable {var.key}: unchanged")
                continue
            Variable.set(var.key, var.value, description=var.description, session=session)
            report.append(f"variable {var.key}: {'created' if existing is None else 'updated'}")
        for pool in settings.pools:
            current = session.scalar(select(Pool).where(Pool.pool == pool.name))
            before = None if current is None else (current.slots, current.description or "")
            Pool.create_or_update_pool(
                pool.name, pool.slots, pool.description, include_deferred=False, session=session
            )
            if before is None:
                report.append(f"pool {pool.name}: created ({pool.slots} slots)")
            elif before == (pool.slots, pool.description):
                report.append(f"pool {pool.name}: unchanged")
            else:
                report.append(f"pool {pool.name}: updated ({pool.slots} slots)")
    return report


def _outcome(kind: str, name: str, changed: Sequence[str]) -> str:
    if not changed:
        return f"{kind} {name}: unchanged"
    return f"{kind} {name}: updated ({', '.join(changed)})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="validate only; write nothing")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.path)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(
            f"{args.path}: ok ({len(settings.connections)} connections, "
            f"{len(settings.variables)} variables, {len(settings.pools)} pools)"
        )
        return 0
    try:
        report = apply_settings(settings)
    except ApplyError as exc:
        print(f"error: {args.path}: {exc}", file=sys.stderr)
        return 1
    for line in report:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
