"""Bad input to governance: a deleted PR branch, a crashing check, an unparsable requirements file.

Each test reviews two pull requests of one governance run: one carries the bad input, the other
is clean. The bad one gets a clear error naming the input, a ledger row and nothing else; the
clean one is decided (and merged) as if the other did not exist. The sandbox's outputs are
written on the host as in test_control_plane; a crashed sandbox task reaches ``decide`` as the
DAG hands it over (the failed task ids and where their logs are).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from triloop.adapters.git import GitError, fresh_checkout, git
from triloop.bootstrap import App
from triloop.domain.contracts import Decision, ReviewRequest
from triloop.domain.policy import RepoPolicy
from triloop.execution.service import claim
from triloop.onboarding import materialise_sample, onboard
from triloop.store.models import CheckRun, Effect, LedgerEntry, PullRequest, Ticket

from tests.integration.test_control_plane import _actor, _fake_sandbox_outputs, _host_scan, _open_pr
from tests.integration.test_governance_trust import _push_to_pr

RUN = _actor("gov-1", "pull_request")


def _two_prs(app: App) -> tuple[int, int]:
    """Two autofix PRs in the level-2 sample repo, both selected by governance run gov-1."""
    app.policy.repos["sample"] = RepoPolicy(autonomy_level=2)
    onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    _host_scan(app, "scan-1")
    first, second, *_ = claim(app, _actor("exec-1"))
    (_, bad), (_, clean) = _open_pr(app, first), _open_pr(app, second)
    from triloop.governance.service import select_reviews

    assert len(select_reviews(app, RUN)) == 2
    return bad, clean


def _pr(app: App, number: int) -> tuple[PullRequest, Ticket]:
    with app.uow() as session:
        pr = session.scalars(select(PullRequest).where(PullRequest.number == number)).one()
        ticket = session.get_one(Ticket, pr.ticket_id)
        session.expunge_all()
    return pr, ticket


def _ledger(app: App, ticket_id: str) -> list[str]:
    with app.uow() as session:
        return list(
            session.scalars(
                select(LedgerEntry.action)
                .where(LedgerEntry.ticket_id == ticket_id)
                .order_by(LedgerEntry.id)
            )
        )


def _decide_clean(app: App, number: int) -> Decision:
    """The clean PR of the same run: prepared, checked, auto-merged as usual."""
    from triloop.governance.service import decide, merge, prepare_review

    review = prepare_review(app, "sample", number, RUN)
    _fake_sandbox_outputs(review)
    decision = decide(app, review, RUN)
    assert decision.outcome == "auto_merge", decision.reasons
    assert merge(app, decision, RUN) is not None
    assert _pr(app, number)[0].state == "merged"
    return decision


def _delete_branch(app: App, number: int) -> str:
    pr, _ = _pr(app, number)
    remote = next(app.settings.forge_dir.glob("sample*"))
    git("update-ref", "-d", f"refs/heads/{pr.branch}", cwd=remote)
    return pr.branch


def _counts(app: App) -> dict[str, int]:
    with app.uow() as session:
        return {
            m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0
            for m in (LedgerEntry, Effect, CheckRun)
        }


@pytest.mark.parametrize(
    ("when", "max_attempts", "ticket_state"),
    [
        ("before the review", 3, "ready"),
        ("between two tries, the workspace re-used", 3, "ready"),
        ("before the review, attempts spent", 1, "dead_letter"),
    ],
)
def test_a_deleted_branch_fails_that_pr_only(
    app: App, when: str, max_attempts: int, ticket_state: str
) -> None:
    from triloop.errors import PermanentError
    from triloop.governance.service import BranchDeleted, prepare_review
    from triloop.retry import Disposition, classify

    app.policy.max_attempts = max_attempts
    bad, clean = _two_prs(app)
    if "between" in when:
        prepare_review(app, "sample", bad, RUN)  # the first try fetched the branch
    branch = _delete_branch(app, bad)
    message = f"sample PR #{bad}: its branch {branch!r} no longer exists on the forge"
    with pytest.raises(BranchDeleted, match=message) as info:
        prepare_review(app, "sample", bad, RUN)
    assert isinstance(info.value, PermanentError)
    assert classify(info.value) is Disposition.PERMANENT  # fails fast, no Airflow retries
    before = _counts(app)
    with pytest.raises(BranchDeleted, match=message):  # a cleared and re-run task
        prepare_review(app, "sample", bad, RUN)
    assert _counts(app) == before  # ... does nothing twice

    pr, ticket = _pr(app, bad)
    assert (pr.state, ticket.state) == ("closed", ticket_state)
    assert branch in (ticket.last_error or "")
    moves = _ledger(app, ticket.id)
    assert moves[-3:] == [
        "governance.branch_deleted",
        "ticket.request_changes",
        "ticket.requeue" if ticket_state == "ready" else "ticket.exhaust",
    ]
    with app.uow() as session:
        row = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == "governance.branch_deleted")
        ).one()
        assert (row.outcome, row.pull_request_id) == ("rejected", pr.id)
        assert f"#{bad}" in (row.error or "") and branch in (row.error or "")
    _decide_clean(app, clean)


def test_fresh_checkout_prunes_a_deleted_branch(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", str(remote))
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work))
    (work / "a.txt").write_text("a\n")
    git("add", "a.txt", cwd=work)
    git("commit", "--quiet", "-m", "a", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", "HEAD:refs/heads/pr-1", cwd=work)
    dest = tmp_path / "checkout"
    fresh_checkout(str(remote), "main", dest)
    assert git("rev-parse", "origin/pr-1", cwd=dest)
    git("update-ref", "-d", "refs/heads/pr-1", cwd=remote)
    fresh_checkout(str(remote), "main", dest)  # the re-used checkout
    with pytest.raises(GitError, match="origin/pr-1"):
        git("rev-parse", "--verify", "origin/pr-1", cwd=dest)


def _tests_error(review: ReviewRequest) -> None:
    """The harness's check ran, but pytest itself crashed (exit 3, an internal error)."""
    Path(review.tests_out, "checks.json").write_text(
        json.dumps(
            {
                "checks": [
                    {
                        "check_id": "tests",
                        "status": "error",
                        "command": "python -m pytest -q",
                        "excerpt": "INTERNALERROR> conftest.py crashed",
                        "exit_code": 3,
                    }
                ]
            }
        )
    )


def _semgrep_error(review: ReviewRequest) -> None:
    """semgrep exited 2 in the merged tree's scan: its (empty) results prove nothing."""
    out = Path(review.merged_out)
    (out / "semgrep.json").write_text(json.dumps({"results": [], "errors": [{"type": "Fatal"}]}))
    message = "semgrep failed (exit 2): Fatal error: rules could not be read"
    tools = {"ruff": {"exit_code": 0}, "semgrep": {"exit_code": 2, "error": message}}
    (out / "result.json").write_text(json.dumps({"tools": tools}))


@pytest.mark.parametrize(
    ("break_it", "crashed", "errored", "named"),
    [
        (_tests_error, {}, {"tests"}, "INTERNALERROR> conftest.py crashed"),
        (_semgrep_error, {}, {"semgrep", "secrets", "ticket_resolved"}, "semgrep failed (exit 2)"),
        (
            lambda review: None,
            {
                "run_tests": "http://airflow.test/dags/d/runs/r/tasks/pull_request.run_tests/mapped/0"
            },
            {"tests"},
            "sandbox task pull_request.run_tests failed",
        ),
        (
            lambda review: None,
            {"analyze_merged": "http://airflow.test/log"},
            {"scan"},
            "sandbox task pull_request.analyze_merged failed",
        ),
    ],
)
def test_a_crashing_check_errors_and_sends_the_ticket_back(
    app: App, break_it: Any, crashed: dict[str, str], errored: set[str], named: str
) -> None:
    from triloop.governance.service import decide, prepare_review

    bad, clean = _two_prs(app)
    review = prepare_review(app, "sample", bad, RUN)
    _fake_sandbox_outputs(review)  # what an earlier, successful try may have left behind
    break_it(review)
    decision = decide(app, review, RUN, crashed=crashed)
    assert decide(app, review, RUN, crashed=crashed) == decision  # a re-run decides once
    assert decision.outcome == "blocked"
    assert decision.reasons[0].startswith(f"checks errored: {', '.join(sorted(errored))}")
    with app.uow() as session:
        rows = session.scalars(select(CheckRun).where(CheckRun.status != "passed")).all()
        assert {(r.check_id, r.status) for r in rows} == {(c, "error") for c in errored}
        assert any(named in r.excerpt for r in rows), [r.excerpt for r in rows]
        for url in crashed.values():
            assert any(url in r.excerpt for r in rows)
    pr, ticket = _pr(app, bad)
    assert (pr.state, ticket.state) == ("closed", "ready")  # not the change's fault: retried
    assert (ticket.last_error or "").startswith("checks errored")
    assert _ledger(app, ticket.id)[-3:] == [
        "governance.blocked",
        "ticket.request_changes",
        "ticket.requeue",
    ]
    _decide_clean(app, clean)


def _sandbox_scan_of(review: ReviewRequest) -> None:
    """The licenses and sbom statuses the image's scan reports for the staged wheelhouse.

    include/sandbox/code_scan.py's own ``dependency_env``, run on the host: a wheelhouse holding
    ``error.txt`` is reported without running anything.
    """
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "include" / "sandbox"))
    from code_scan import dependency_env

    out = Path(review.merged_out)
    _, licenses, sbom = dependency_env(out, Path(review.merged_workspace), {})
    result = json.loads((out / "result.json").read_text())
    result["tools"].update(licenses=licenses, sbom=sbom)
    (out / "result.json").write_text(json.dumps(result))


@pytest.mark.parametrize(
    ("line", "why", "errored"),
    [
        ("requests===", "not a valid requirement", {"licenses", "sbom"}),
        ("-e ../../etc", "outside the repository", set()),
        ("--frobnicate requests", "not a pip option", set()),
    ],
)
def test_an_unparsable_requirements_file_fails_dependency_trust(
    app: App, tmp_path: Path, line: str, why: str, errored: set[str]
) -> None:
    from triloop.governance.service import decide, prepare_review

    app.policy.code_scans.licenses.deny = ["GPL-3.0-only"]
    bad, clean = _two_prs(app)
    _push_to_pr(app, tmp_path, bad, {"requirements.txt": f"{line}\n"})
    review = prepare_review(app, "sample", bad, RUN)
    _fake_sandbox_outputs(review)
    if errored:  # staging refused the file: the sandbox's licenses and SBOM say so
        error = Path(review.merged_out, "wheelhouse", "error.txt").read_text()
        assert "requests===" in error  # pip's own words: no version satisfies it
        _sandbox_scan_of(review)
    decision = decide(app, review, RUN)
    assert decision.outcome == "blocked"
    with app.uow() as session:
        rows = session.scalars(select(CheckRun).where(CheckRun.status != "passed")).all()
    assert {(r.check_id, r.status) for r in rows} == {
        ("dependency-trust", "failed"),
        *((check, "error") for check in errored),
    }
    [row] = [r for r in rows if r.check_id == "dependency-trust"]
    assert "deptrust.unparsable" in row.rule_ids
    assert f"requirements.txt:1: {line}: deptrust.unparsable: " in row.excerpt
    assert why in row.excerpt
    pr, ticket = _pr(app, bad)
    assert (pr.state, ticket.state) == ("closed", "closed")  # the change's fault: closed
    _decide_clean(app, clean)


CRASHING_TEST = """import os
import signal


def test_interrupts_the_harness():
    os.kill(1, signal.SIGINT)  # PID 1 is triloop-harness: it dies mid-check
"""


@pytest.fixture
def governance_dag(
    sandbox_image: str, triloop_home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The real triloop_governance DAG on a migrated Airflow DB and this test's Triloop DB."""
    import subprocess
    import sys

    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, timeout=300)
    conn = {"conn_type": "generic", "extra": {"sqlalchemy_url": db_url}}
    monkeypatch.setenv("AIRFLOW_CONN_TRILOOP_DB", json.dumps(conn))
    from airflow.dag_processing.dagbag import DagBag

    root = Path(__file__).resolve().parents[2]
    bag = DagBag(dag_folder=str(root / "dags" / "triloop_governance.py"))
    assert bag.import_errors == {}
    return bag.dags["triloop_governance"]


@pytest.mark.docker
def test_a_crashed_sandbox_in_the_dag_is_decided_as_an_error(
    app: App, tmp_path: Path, governance_dag: Any
) -> None:
    """dag.test with real sandboxes: the bad PR's tests kill the harness in its check and scan
    sandboxes; decide still runs for it (all_done), the clean PR is merged."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    app.policy.repos["sample"] = RepoPolicy(autonomy_level=2)  # as include/policy/default.yaml
    onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    _host_scan(app, "scan-1")
    first, second, *_ = claim(app, _actor("exec-1"))
    (_, bad), (_, clean) = _open_pr(app, first), _open_pr(app, second)
    _push_to_pr(app, tmp_path, bad, {"tests/test_crash.py": CRASHING_TEST})

    run = governance_dag.test()
    with create_session() as session:
        states = {
            (ti.task_id.split(".")[-1], ti.map_index): str(ti.state)
            for ti in session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id))
        }
    index = {bad: 0, clean: 1} if bad < clean else {bad: 1, clean: 0}
    b, c = index[bad], index[clean]
    assert states[("run_tests", b)] == "failed", states
    assert states[("decide", b)] == "success", states
    assert states[("auto_merge", b)] == "skipped"
    assert states[("auto_merge", c)] == "success", states

    pr, ticket = _pr(app, bad)
    assert (pr.state, ticket.state) == ("closed", "ready")
    assert (ticket.last_error or "").startswith("checks errored: ")
    with app.uow() as session:
        rows = session.scalars(
            select(CheckRun).where(CheckRun.pull_request_id == pr.id, CheckRun.status == "error")
        ).all()
    by_id = {r.check_id: r.excerpt for r in rows}
    assert "sandbox task pull_request.run_tests failed" in by_id["tests"]
    assert f"/tasks/pull_request.run_tests/mapped/{b}" in by_id["tests"]
    assert _pr(app, clean)[0].state == "merged"


def test_a_check_that_raises_in_the_harness_is_an_error_entry() -> None:
    """The image's `check` runs each check guarded: a check whose own code raises (here the
    semgrep check on a report that is a JSON list, not the object semgrep writes) becomes an
    `error` entry naming it; the harness does not crash and the other checks still count."""
    from tests.unit.test_agent_budget_stop import harness_module

    harness = harness_module()

    def semgrep_on_a_list_report() -> dict[str, Any]:
        return {"results": json.loads("[]").get("results")}  # AttributeError, as in the image

    entry = harness._guarded("semgrep", semgrep_on_a_list_report)
    assert (entry["check_id"], entry["status"], entry["rule_ids"]) == ("semgrep", "error", [])
    assert entry["excerpt"].startswith("semgrep crashed: AttributeError(")
    assert entry["command"] and entry["exit_code"] == -1
    fine = harness._guarded("ruff", lambda: {"check_id": "ruff", "status": "passed"})
    assert fine == {"check_id": "ruff", "status": "passed"}
