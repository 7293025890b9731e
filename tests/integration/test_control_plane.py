"""The control plane on SQLite: onboarding, bad input, ingest idempotency, claims and leases."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.execution.service import claim
from triloop.janitor.service import close_resolved, reap_leases
from triloop.onboarding import OnboardingError, materialise_sample, onboard
from triloop.store.ledger import Actor
from triloop.store.models import Effect, LedgerEntry, PullRequest, Repo, Scan, Ticket

from tests.support.review_outputs import green_checks, write_report
from tests.support.rows import RUFF, autofix_on_host, host_scan


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    """Every control-plane test runs on SQLite (embedded) and PostgreSQL (production)."""
    return str(request.param)


def _actor(run: str, task: str = "t") -> Actor:
    return Actor(name=f"test:{task}", dag_id="triloop_test", run_id=run, task_id=task, try_number=1)


def _host_scan(app: App, run: str) -> list[str]:
    with app.uow() as session:
        repo = repo_ref(session.get_one(Repo, "sample"))
    return host_scan(app, repo, _actor(run))


def _counts(app: App) -> dict[str, int]:
    with app.uow() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Repo, Ticket, Scan, Effect)
        }


def test_sample_is_onboarded_once(app: App) -> None:
    first = onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    again = onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    assert first.id == again.id == "sample"
    assert Path(first.remote, "HEAD").exists()


@pytest.mark.parametrize(
    ("make_target", "message"),
    [
        (lambda tmp: str(tmp / "missing"), "no such file or directory"),
        (lambda tmp: str(tmp), "not a git repository"),
        (lambda tmp: "http://127.0.0.1:9/nothing.git", "remote is unreachable"),
        (lambda tmp: _no_python_repo(tmp), "has no Python files"),
    ],
)
def test_bad_onboarding_input_is_refused_and_recorded(
    app: App, tmp_path: Path, make_target, message: str
) -> None:  # type: ignore[no-untyped-def]
    target = make_target(tmp_path)
    before = _counts(app)
    with pytest.raises(OnboardingError, match=message) as info:
        onboard(app, target, actor=_actor("r"))
    assert target in str(info.value)
    assert _counts(app) == before
    assert not any(app.settings.forge_dir.glob("*")) if app.settings.forge_dir.exists() else True
    with app.uow() as session:
        row = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id.desc())).first()
        assert row is not None and row.outcome == "rejected" and message in (row.error or "")


def _no_python_repo(tmp: Path) -> str:
    repo = tmp / "docs-only"
    repo.mkdir()
    (repo / "README.md").write_text("docs\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return str(repo)


def test_rescanning_an_unchanged_repo_creates_no_ticket(app: App) -> None:
    onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    created = _host_scan(app, "scan-1")
    assert len(created) >= 3
    assert _host_scan(app, "scan-1") == created  # a cleared and re-run ingest task
    assert _host_scan(app, "scan-2") == []  # a new run over the same code
    with app.uow() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == len(created)


def test_claims_are_exclusive_and_rerun_safe(app: App) -> None:
    onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    _host_scan(app, "scan-1")
    one = claim(app, _actor("exec-1"))
    assert claim(app, _actor("exec-1")) == one  # re-run of the same claim task
    two = claim(app, _actor("exec-2"))
    assert one and not {c.ticket_id for c in one} & {c.ticket_id for c in two}


def test_expired_leases_return_to_ready(app: App) -> None:
    onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    _host_scan(app, "scan-1")
    claimed = claim(app, _actor("exec-1"))
    later = datetime.now(UTC) + timedelta(seconds=app.policy.lease_seconds + 1)
    reaped = reap_leases(app, _actor("janitor"), now=later)
    assert sorted(reaped) == sorted(c.ticket_id for c in claimed)
    with app.uow() as session:
        states = {session.get_one(Ticket, t).state for t in reaped}
        lost = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == "ticket.lease_expired")
        ).all()
    assert states == {"ready"}
    assert {r.payload["lost_by"] for r in lost} == {"triloop_test/exec-1"}


def test_janitor_closes_tickets_whose_finding_is_gone(app: App) -> None:
    onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    created = _host_scan(app, "scan-1")
    with app.uow() as session:
        session.add(Scan(repo_id="sample", idempotency_key="later", head_sha="x", ticket_keys=[]))
    assert sorted(close_resolved(app, _actor("janitor"))) == sorted(created)


def test_a_failed_scanner_leaves_its_tickets_open(app: App) -> None:
    """ruff broke in the later scan (say, a configuration it cannot read): that says nothing
    about its tickets, so the janitor closes none of them."""
    from triloop.discovery.service import ingest_scan, prepare_scan

    onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    created = _host_scan(app, "scan-1")
    with app.uow() as session:
        repo = repo_ref(session.get_one(Repo, "sample"))
    request = prepare_scan(app, repo, _actor("scan-2"))
    out = Path(request.output_dir)
    (out / "ruff.json").write_text("")
    (out / "semgrep.json").write_text(json.dumps({"results": [], "errors": []}))
    tools = {"ruff": {"exit_code": 2, "error": "ruff failed (exit 2): bad config"}}
    (out / "result.json").write_text(json.dumps({"tools": {**tools, "semgrep": {"exit_code": 0}}}))
    assert ingest_scan(app, request, _actor("scan-2")) == []
    assert close_resolved(app, _actor("janitor")) == []
    with app.uow() as session:
        states = {session.get_one(Ticket, t).state for t in created}
        failed = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == "discovery.scanner_failed")
        ).all()
    assert "resolved" not in states and "closed" not in states
    assert [r.payload["scanner"] for r in failed] == ["ruff"]


def test_malformed_patch_is_refused_recorded_and_changes_nothing(app: App) -> None:
    from triloop.execution.service import HarnessFailed, finish, prepare

    repo = onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    _host_scan(app, "scan-1")
    [first, *_] = claim(app, _actor("exec-1"))
    request = prepare(app, first, _actor("exec-1", "prepare"))
    out = Path(request.output_dir)
    (out / "result.json").write_text(
        json.dumps(
            {
                "schema_version": 1,
                "harness": "autofix",
                "ticket_id": first.ticket_id,
                "status": "changed",
                "summary": "edited",
                "files_changed": request.paths,
            }
        )
    )
    (out / "patch.diff").write_text("diff --git a/x\nthis is not a patch\n")
    heads_before = subprocess.run(
        ["git", "ls-remote", repo.remote], capture_output=True, text=True, check=True
    ).stdout
    with pytest.raises(HarnessFailed, match=r"patch\.diff: unreadable diff header"):
        finish(app, request, _actor("exec-1", "open_pr"))
    with pytest.raises(HarnessFailed, match="unreadable diff header"):  # a re-run says the same
        finish(app, request, _actor("exec-1", "open_pr"))
    assert (
        subprocess.run(
            ["git", "ls-remote", repo.remote], capture_output=True, text=True, check=True
        ).stdout
        == heads_before
    )
    with app.uow() as session:
        ticket = session.get_one(Ticket, first.ticket_id)
        assert ticket.state == "dead_letter" and "patch.diff" in (ticket.last_error or "")
        rows = session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.ticket_id == first.ticket_id, LedgerEntry.action == "ticket.give_up"
            )
        ).all()
        assert len(rows) == 1 and "unreadable diff header" in (rows[0].error or "")

        assert session.scalars(select(PullRequest)).all() == []


def _fake_sandbox_outputs(review, tests_status: str = "passed") -> None:  # type: ignore[no-untyped-def]
    """Write what the sandbox's analyze/test/fix commands write, by running ruff on the host."""
    green_checks(review)
    if tests_status == "failed":
        write_report(review.tests_out, {"tests/test_models.py::test_add": "failed"})
    for src, out in (
        (review.base_workspace, review.base_out),
        (review.merged_workspace, review.merged_out),
    ):
        ruff = subprocess.run(
            [RUFF, "check", "--output-format", "json", "--exit-zero", "--no-cache", "."],
            cwd=src,
            capture_output=True,
            text=True,
            check=True,
        )
        Path(out, "ruff.json").write_text(ruff.stdout.replace(src + "/", "/workspace/"))
        Path(out, "semgrep.json").write_text(json.dumps({"results": [], "errors": []}))
        Path(out, "result.json").write_text(
            json.dumps({"tools": {"ruff": {"exit_code": 0}, "semgrep": {"exit_code": 0}}})
        )
    Path(review.tests_out, "checks.json").write_text(
        json.dumps(
            {
                "checks": [
                    {
                        "check_id": "tests",
                        "status": tests_status,
                        "command": "python -m pytest -q",
                        "excerpt": "FAILED tests/test_models.py::test_add"
                        if tests_status == "failed"
                        else "ok",
                        "rule_ids": ["tests/test_models.py::test_add"]
                        if tests_status == "failed"
                        else [],
                    }
                ]
            }
        )
    )


def _pr_for_first_ticket(app: App, tmp: Path) -> tuple[str, int]:
    onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    _host_scan(app, "scan-1")
    [first, *_] = claim(app, _actor("exec-1"))
    return _open_pr(app, first)


def _open_pr(app: App, first) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """Do what the autofix harness does, on the host, and open the PR through execution."""
    from triloop.execution.service import finish, prepare

    request = prepare(app, first, _actor("exec-1", "prepare"))
    autofix_on_host(request)
    Path(request.output_dir, "result.json").write_text(
        json.dumps(
            {
                "schema_version": 1,
                "harness": "autofix",
                "ticket_id": first.ticket_id,
                "status": "changed",
                "files_changed": request.paths,
            }
        )
    )
    pr = finish(app, request, _actor("exec-1", "open_pr"))
    assert pr is not None
    return pr.repo_id, pr.number


@pytest.mark.parametrize(
    ("level", "tests_status", "verdict", "outcome", "pr_state"),
    [
        (2, "passed", None, "auto_merge", "merged"),
        (1, "passed", "Approve", "needs_human", "merged"),
        (1, "passed", "Reject", "needs_human", "closed"),
        (2, "failed", None, "blocked", "closed"),
    ],
)
def test_governance_decides_by_policy(  # type: ignore[no-untyped-def]
    app: App, tmp_path: Path, level, tests_status, verdict, outcome, pr_state
) -> None:
    from triloop.domain.policy import RepoPolicy
    from triloop.governance.service import (
        decide,
        human_verdict,
        merge,
        prepare_review,
        select_reviews,
    )
    from triloop.store.models import CheckRun

    app.policy.repos["sample"] = RepoPolicy(autonomy_level=level)
    repo_id, number = _pr_for_first_ticket(app, tmp_path)
    reviewer = _actor("gov-1", "decide")
    assert select_reviews(app, reviewer) == [{"repo_id": repo_id, "number": number}]
    review = prepare_review(app, repo_id, number, reviewer)
    _fake_sandbox_outputs(review, tests_status)
    decision = decide(app, review, reviewer)
    assert decide(app, review, reviewer) == decision  # a re-run decides nothing new
    assert decision.outcome == outcome
    if outcome == "auto_merge":
        merge(app, decision, reviewer)
    elif verdict:
        human_verdict(app, decision, verdict, _actor("gov-1", "human_approval"))
    with app.uow() as session:
        pr = session.scalars(select(PullRequest)).one()
        checks = session.scalars(select(CheckRun)).all()
        assert pr.state == pr_state
        assert {c.check_id for c in checks} == {
            *("tests", "ruff", "semgrep", "secrets", "dependency-trust", "ticket_resolved"),
            *("vulnerabilities", "tests-base", "test-counts"),
        }
        failing = [c for c in checks if c.status != "passed"]
        if tests_status == "failed":
            assert [c.rule_ids for c in failing] == [["tests/test_models.py::test_add"]]
        else:
            assert failing == []


def test_two_merges_on_one_base_cannot_both_land(app: App, tmp_path: Path) -> None:
    from triloop.governance.service import decide, merge, prepare_review, select_reviews

    onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    _host_scan(app, "scan-1")
    first, second, *_ = claim(app, _actor("exec-1"))
    prs = [_open_pr(app, first), _open_pr(app, second)]
    reviewer = _actor("gov-1", "decide")
    assert len(select_reviews(app, reviewer)) == 2
    decisions = []
    for repo_id, number in prs:  # both checked against the same base, as parallel tasks are
        review = prepare_review(app, repo_id, number, reviewer)
        _fake_sandbox_outputs(review)
        decisions.append(decide(app, review, reviewer))
    assert {d.base_sha for d in decisions} == {decisions[0].base_sha}
    assert merge(app, decisions[0], reviewer) is not None
    assert merge(app, decisions[1], reviewer) is None  # base moved: sent back, not merged
    with app.uow() as session:
        states = {p.number: p.state for p in session.scalars(select(PullRequest))}
        second_ticket = session.get_one(Ticket, second.ticket_id)
    assert states == {prs[0][1]: "merged", prs[1][1]: "open"}
    assert second_ticket.state == "pr_open"


def _conflict_on_main(app: App, repo_id: str, number: int, tmp: Path) -> None:
    """Someone lands a change to the PR's lines on main: the PR no longer merges cleanly."""
    with app.uow() as session:
        remote = session.get_one(Repo, repo_id).remote
        pr = session.scalars(select(PullRequest).where(PullRequest.number == number)).one()
        path = session.get_one(Ticket, pr.ticket_id).path
    clone = tmp / "other"
    subprocess.run(["git", "clone", "-q", remote, str(clone)], check=True)
    target = clone / path
    target.write_text("# rewritten on main\n" + target.read_text().replace("import", "import  "))
    for args in (["add", "-A"], ["commit", "-qm", "conflict"], ["push", "-q", "origin", "HEAD"]):
        subprocess.run(
            ["git", "-c", "user.name=o", "-c", "user.email=o@o", *args], cwd=clone, check=True
        )


def test_a_pr_that_stops_merging_goes_back_and_a_stale_run_leaves_it(
    app: App, tmp_path: Path
) -> None:
    from triloop.governance.service import NotMergeable, prepare_review, select_reviews

    repo_id, number = _pr_for_first_ticket(app, tmp_path)
    _conflict_on_main(app, repo_id, number, tmp_path)
    reviewer = _actor("gov-1", "prepare_review")
    assert select_reviews(app, reviewer) == [{"repo_id": repo_id, "number": number}]
    stale = _actor("gov-0", "prepare_review")  # an older run's cleared task: not its review
    with pytest.raises(NotMergeable, match=f"PR #{number} in {repo_id} does not merge"):
        prepare_review(app, repo_id, number, stale)
    with app.uow() as session:
        pr = session.scalars(select(PullRequest).where(PullRequest.number == number)).one()
        assert (pr.state, session.get_one(Ticket, pr.ticket_id).state) == ("open", "in_review")
    with pytest.raises(NotMergeable):
        prepare_review(app, repo_id, number, reviewer)
    with app.uow() as session:
        pr = session.scalars(select(PullRequest).where(PullRequest.number == number)).one()
        ticket = session.get_one(Ticket, pr.ticket_id)
        moves = session.scalars(
            select(LedgerEntry.action)
            .where(LedgerEntry.ticket_id == ticket.id)
            .order_by(LedgerEntry.id.desc())
            .limit(2)
        ).all()
    assert (pr.state, ticket.state) == ("closed", "ready")
    assert moves == ["ticket.requeue", "ticket.request_changes"]
