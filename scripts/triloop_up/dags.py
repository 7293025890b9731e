"""Step 5: unpause the Triloop DAGs once the DAG processor has parsed them, trigger discovery."""

from __future__ import annotations

import json
import time

from .commands import airflow
from .console import say
from .plan import Plan
from .standalone import Standalone

TRILOOP_DAGS = (
    "triloop_discovery",
    "triloop_execution",
    "triloop_governance",
    "triloop_verification",
    "triloop_janitor",
)
TRIGGERED_DAG = "triloop_discovery"


def json_rows(output: str) -> list[dict[str, object]]:
    """The JSON list an ``airflow ... -o json`` command printed among its log lines."""
    for line in reversed(output.splitlines()):
        if line.startswith("[{") or line.strip() == "[]":
            try:
                rows = json.loads(line)
            except json.JSONDecodeError:
                continue
            return [row for row in rows if isinstance(row, dict)]
    return []


def _dags_json(plan: Plan, command: str) -> list[dict[str, object]]:
    return json_rows(airflow(plan, "dags", command, "-o", "json", timeout=120))


def registered_dags(plan: Plan) -> dict[str, bool]:
    """dag_id -> is_paused for the DAGs serialized in the metadata database."""
    return {
        str(row["dag_id"]): str(row.get("is_paused")).lower() == "true"
        for row in _dags_json(plan, "list")
        if "dag_id" in row
    }


def import_errors(plan: Plan) -> list[str]:
    """One line per DAG file that failed to import: the file and the error's last line."""
    lines = []
    for row in _dags_json(plan, "list-import-errors"):
        error = str(row.get("error") or "").strip().splitlines() or ["?"]
        lines.append(f"{row.get('filepath')}: {error[-1]}")
    return lines


def activate_dags(plan: Plan, standalone: Standalone, deadline: float) -> list[str]:
    """Unpause the Triloop DAGs once parsed, trigger discovery once; return problems found."""
    while True:
        known = registered_dags(plan)
        missing = [dag for dag in TRILOOP_DAGS if dag not in known]
        if not missing or time.monotonic() > deadline:
            break
        say(f"    waiting for the DAG processor to parse: {', '.join(missing)}")
        standalone.check()
        time.sleep(3)
    problems = []
    for dag_id in TRILOOP_DAGS:
        if dag_id not in known:
            problems.append(f"{dag_id} is not in the metadata database, so it was not unpaused")
        elif known[dag_id]:
            airflow(plan, "dags", "unpause", dag_id, timeout=120)
            say(f"    unpaused {dag_id}")
        else:
            say(f"    {dag_id} already unpaused")
    if TRIGGERED_DAG in known:
        airflow(plan, "dags", "trigger", TRIGGERED_DAG, timeout=120)
        say(f"    triggered {TRIGGERED_DAG}")
    if problems:
        errors = import_errors(plan)
        problems.append(
            "DAG import errors (fix the file; the DAG processor re-reads it within seconds):"
            + "".join(f"\n      {line}" for line in errors or ["none reported yet"])
        )
    return problems
