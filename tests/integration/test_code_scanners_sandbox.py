"""The sandbox code scanners end to end: fixture repositories built to trigger each one.

The real sandbox image runs ``triloop-harness scan`` hardened (no network, read-only root);
the host prepares the dependency wheelhouse with the real ``pip download`` as the discovery
DAG's update_workspace does, here from a local directory of wheels the test builds (pip's own
PIP_NO_INDEX/PIP_FIND_LINKS: nothing leaves the machine); the registry's scanners turn the
reports into findings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest
from triloop.discovery.scanners import ScanContext, run_scanners
from triloop.discovery.wheelhouse import prepare_wheelhouse
from triloop.domain.policy import Policy

from tests.integration.conftest import HARDENED_RUN
from tests.support.wheels import make_wheel

pytestmark = pytest.mark.docker

CALC = {"pkg/__init__.py": "", "pkg/calc.py": "def add(a, b):\n    return a + b\n"}
FAILING = {
    **CALC,
    "tests/test_calc.py": "from pkg.calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3"
    '\n\n\ndef test_broken():\n    assert add(2, 2) == 5, "two and two"\n',
}
PASSING = {
    **CALC,
    "tests/test_calc.py": "from pkg.calc import add\n\n\ndef test_add():\n"
    "    assert add(1, 2) == 3\n",
}
LONELY = "def unused(x):\n    if x:\n        return 1\n    y = x * 2\n    return y + 3\n"
TINY_TEST = "import tinymit\n\n\ndef test_tiny():\n    assert tinymit.ANSWER == 42\n"
Scan = Callable[..., tuple[dict[str, Any], ScanContext]]


@pytest.fixture
def scan(
    docker_client: docker.DockerClient,
    sandbox_image: str,
    out_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Scan:
    """Host wheelhouse step, then ``scan`` in the sandbox; returns (result.json, context)."""
    index = tmp_path / "local-wheels"
    make_wheel(
        index,
        "tinymit",
        "1.0.0",
        license_classifier="License :: OSI Approved :: MIT License",
        module="ANSWER = 42\n",
    )
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))

    def run(
        repo: Path,
        policy: Policy,
        env: dict[str, str] | None = None,
        wheelhouse_mount: bool = False,
    ) -> tuple[dict[str, Any], ScanContext]:
        wheelhouse = prepare_wheelhouse(repo, out_dir, tmp_path / "wheel-cache")
        volumes = {
            str(repo): {"bind": "/workspace", "mode": "ro"},
            str(out_dir): {"bind": "/out", "mode": "rw"},
        }
        if wheelhouse_mount and wheelhouse is not None:
            volumes[str(wheelhouse)] = {"bind": "/wheelhouse", "mode": "ro"}
        container = docker_client.containers.run(
            sandbox_image,
            ["scan", "--out", "/out"],
            detach=True,
            environment=env or {},
            volumes=volumes,
            labels={"io.triloop.sandbox": "1", "io.triloop.test": "code-scan"},
            **HARDENED_RUN,
        )
        try:
            code = int(container.wait(timeout=600)["StatusCode"])
            logs = container.logs(stdout=True, stderr=True).decode()
        finally:
            container.remove(force=True)
        assert code == 0, logs  # scan exits 0 once result.json is written
        result = json.loads((out_dir / "result.json").read_text())
        return result, ScanContext("repo", repo, out_dir, policy)

    return run


def found(ctx: ScanContext, tool: str) -> list[tuple[Any, ...]]:
    findings, failures = run_scanners(ctx)
    assert failures == {}, failures
    return [(f.rule, f.path, f.symbol, f.message) for f in findings if f.tool == tool]


def test_a_failing_test_is_a_test_failure_finding(
    make_repo: Callable[[dict[str, str]], Path], scan: Scan
) -> None:
    result, ctx = scan(make_repo(FAILING), Policy())
    assert result["tools"]["pytest"]["exit_code"] == 1
    assert result["tools"]["pytest"]["argv"][1:4] == ["-m", "coverage", "run"]
    assert found(ctx, "pytest") == [
        ("test-failure", "tests/test_calc.py", "test_broken", "AssertionError: two and two")
    ]


def test_an_uncovered_module_is_a_coverage_finding(
    make_repo: Callable[[dict[str, str]], Path], scan: Scan
) -> None:
    result, ctx = scan(make_repo({**PASSING, "pkg/lonely.py": LONELY}), Policy())
    assert result["tools"]["coverage"]["exit_code"] == 0
    gaps = found(ctx, "coverage")
    assert [g[:3] for g in gaps] == [("coverage-gap", "pkg/lonely.py", "<module>")]
    assert gaps[0][3].startswith("5 of 5 statements never run by the tests (0.0% covered)")
    assert found(ctx, "pytest") == []


def test_a_denied_dependency_license_is_a_license_finding(
    make_repo: Callable[[dict[str, str]], Path], scan: Scan
) -> None:
    files = {**PASSING, "tests/test_tiny.py": TINY_TEST, "requirements.txt": "tinymit==1.0.0\n"}
    deny_mit = Policy.model_validate({"code_scans": {"licenses": {"deny": ["MIT"]}}})
    result, ctx = scan(make_repo(files), deny_mit)
    assert result["tools"]["licenses"]["argv"][:3] == [
        "pip-licenses",
        "--python",
        "/tmp/triloop-deps/bin/python",
    ]
    assert json.loads((ctx.output_dir / "licenses.json").read_text()) == [
        {"License": "MIT License", "Name": "tinymit", "Version": "1.0.0"}
    ]
    assert found(ctx, "licenses") == [
        (
            "license-denied",
            "requirements.txt",
            "tinymit",
            "tinymit 1.0.0 is licensed MIT License: denied by the policy",
        )
    ]
    assert found(ctx, "pytest") == []  # the tests ran in the same venv: the import worked
    allow_apache = Policy.model_validate({"code_scans": {"licenses": {"allow": ["Apache-2.0"]}}})
    ctx = ScanContext(ctx.repo_id, ctx.checkout, ctx.output_dir, allow_apache)
    assert [f[0] for f in found(ctx, "licenses")] == ["license-not-allowed"]


def test_a_repo_without_tests_or_dependencies_gives_an_empty_valid_result(
    make_repo: Callable[[dict[str, str]], Path], scan: Scan
) -> None:
    result, ctx = scan(
        make_repo(CALC), Policy.model_validate({"code_scans": {"licenses": {"deny": ["MIT"]}}})
    )
    tools = result["tools"]
    assert tools["pytest"]["exit_code"] == 5 and "error" not in tools["pytest"]
    assert tools["coverage"]["skipped"] == "no tests collected"
    assert tools["licenses"]["skipped"].startswith("no wheelhouse")
    findings, failures = run_scanners(ctx)
    assert failures == {} and [f for f in findings if f.tool != "ruff"] == []


def test_hanging_tests_hit_the_budget_and_fail_only_their_scanners(
    make_repo: Callable[[dict[str, str]], Path], scan: Scan
) -> None:
    hang = "import time\n\n\ndef test_hang():\n    time.sleep(600)\n"
    repo = make_repo({**CALC, "tests/test_hang.py": hang})
    result, ctx = scan(repo, Policy(), env={"TRILOOP_SCAN_TEST_BUDGET_S": "5"})
    assert result["tools"]["pytest"]["error"] == "pytest exceeded its time budget of 5s"
    assert result["tools"]["pytest"]["duration_s"] < 30
    findings, failures = run_scanners(ctx)
    assert list(failures) == ["pytest"] and "time budget of 5s" in failures["pytest"]
    assert "coverage" not in failures  # skipped: the tests did not complete
    assert {f.tool for f in findings} <= {"ruff", "semgrep"}


def test_a_wheelhouse_the_host_could_not_prepare_fails_only_the_licenses_scanner(
    make_repo: Callable[[dict[str, str]], Path], scan: Scan
) -> None:
    files = {**FAILING, "requirements.txt": "tinymit==0.0.1\n"}  # no such release
    deny = Policy.model_validate({"code_scans": {"licenses": {"deny": ["GPL-*"]}}})
    result, ctx = scan(make_repo(files), deny, wheelhouse_mount=True)
    assert "pip download failed" in result["tools"]["licenses"]["error"]
    findings, failures = run_scanners(ctx)
    assert list(failures) == ["licenses"]
    assert "the host could not prepare it: pip download failed" in failures["licenses"]
    assert [f.symbol for f in findings if f.tool == "pytest"] == ["test_broken"]


VERSIONED = {  # hatch-vcs / setuptools-scm: _version.py is written by the build, not committed
    "src/pkg/__init__.py": "from pkg._version import version\n",
    "src/pkg/calc.py": "def add(a, b):\n    return a + b\n",
    "src/pkg/lonely.py": LONELY,
    "tests/test_a.py": "from pkg.calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    "tests/test_b.py": "import pkg\n\n\ndef test_version():\n    assert pkg.version\n",
    "tests/test_c.py": "import tablib\n\n\ndef test_tablib():\n    assert tablib\n",
}


def test_an_incomplete_environment_is_one_problem_not_a_ticket_per_module(
    make_repo: Callable[[dict[str, str]], Path], scan: Scan
) -> None:
    _, ctx = scan(make_repo(VERSIONED), Policy())
    assert found(ctx, "pytest") == [] and found(ctx, "coverage") == []
    [problem] = found(ctx, "environment")
    assert problem[:3] == ("environment-broken", ".", "")
    assert problem[3].startswith(
        "the test environment is incomplete: pkg._version, tablib cannot be imported, so 3 test"
        " module(s) could not be collected"
    )
    again, _ = run_scanners(ctx)
    assert len({f.fingerprint for f in again if f.tool == "environment"}) == 1


def test_a_module_the_repository_lost_stays_a_test_error(
    make_repo: Callable[[dict[str, str]], Path], scan: Scan
) -> None:
    lost = "from pkg.gone import thing\n\n\ndef test_thing():\n    assert thing\n"
    _, ctx = scan(make_repo({**PASSING, "tests/test_lost.py": lost}), Policy())
    assert found(ctx, "environment") == []
    [(rule, path, _, message)] = found(ctx, "pytest")
    assert (rule, path) == ("test-error", "tests/test_lost.py") and "pkg.gone" in message
