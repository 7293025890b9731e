"""The sandbox's ``agent`` subcommand treats the egress proxy's budget refusal as a budget stop.

An agent CLI whose model calls the proxy refused (429, token budget spent) usually exits
non-zero. Reported as ``failed`` (exit 1), the harness task would fail and Airflow would retry
it: a second agent run spending the ticket's budget again (the DAG-level test
tests/e2e/test_agent_harness.py saw 13812 tokens spent on a 6000-token budget). The proxy's
meter, read-only in the sandbox, makes it ``over_budget`` (exit 0) instead.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.rows import git_repo

HARNESS_PY = Path(__file__).resolve().parents[2] / "include" / "sandbox" / "harness.py"
REFUSED = "token budget of 6000 exhausted (6906 used)"


def harness_module() -> Any:
    spec = importlib.util.spec_from_file_location("triloop_harness", HARNESS_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


def meter(out: Path, **fields: Any) -> None:
    (out / "egress").mkdir(parents=True, exist_ok=True)
    (out / "egress" / "usage.json").write_text(json.dumps({"schema_version": 1, **fields}))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"over_budget": "tokens", "tokens": 6906, "refused": [{"reason": REFUSED}]}, REFUSED),
        ({"over_budget": "tokens", "tokens": 6906}, "token budget spent (6906 used)"),
        ({"over_budget": "", "tokens": 10, "refused": [{"reason": "not allowlisted"}]}, ""),
        (None, ""),
    ],
)
def test_the_meter_says_whether_the_proxy_stopped_the_agent(
    tmp_path: Path, fields: dict[str, Any] | None, expected: str
) -> None:
    if fields is not None:
        meter(tmp_path, **fields)
    assert harness_module().proxy_budget_stop(tmp_path) == expected


def test_an_agent_cut_off_by_the_proxy_is_over_budget_not_failed(tmp_path: Path) -> None:
    repo = git_repo(tmp_path, {"a.py": "x = 1\n"})
    out = tmp_path / "out"
    out.mkdir()
    meter(out, over_budget="tokens", tokens=6906, refused=[{"reason": REFUSED}])
    request = {
        "schema_version": 1,
        "harness": "mini-swe-agent",
        "ticket_id": "T-1",
        "argv": [sys.executable, "-c", "import sys; sys.exit('RateLimitError: 429')"],
        "env": {},
        "pass_env": [],
        "prompt": "fix it",
        "runtime_limit_s": 60,
    }
    (out / "request.json").write_text(json.dumps(request))
    argv = [sys.executable, str(HARNESS_PY), "agent", "--request", str(out / "request.json")]
    proc = subprocess.run(
        [*argv, "--out", str(out)],
        env={"PATH": "/usr/bin:/bin", "TRILOOP_WORKSPACE": str(repo), "HOME": str(tmp_path)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    result = json.loads((out / "result.json").read_text())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (result["status"], result["over_budget"], result["exit_code"]) == (
        "over_budget",
        "tokens",
        1,
    )
    assert REFUSED in result["summary"]
