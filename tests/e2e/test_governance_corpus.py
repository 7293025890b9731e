"""Governance's corpus: one pull request per case, each with its expected decision and evidence.

Nine copies of the sample repository are onboarded, each with its own autonomy level, and each
gets one autofix PR (F401 in inventory/models.py) plus the change its case is about, pushed to
the PR's branch as a harness or a person could. Then the real governance DAG runs once under
``dag.test`` with real sandboxes (scans, tests, the environment's licenses and SBOM), a reviewer
answers the PRs that wait for a human through Airflow's REST API (hitlDetails), and the
verification DAG runs the full test suite on each merge. The table below is the whole contract.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from triloop.adapters.git import git
from triloop.bootstrap import App, bootstrap
from triloop.discovery.service import repo_ref
from triloop.execution.service import claim
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import CLI
from triloop.store.models import (
    CheckRun,
    DecisionRow,
    EscapedDefect,
    LedgerEntry,
    PullRequest,
    Repo,
    Ticket,
)

from tests.integration.test_control_plane import _actor, _open_pr
from tests.integration.test_governance_trust import AWS, _push_to_pr
from tests.support.hitl import Reviewer
from tests.support.rows import host_scan
from tests.support.wheels import make_wheel

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
ROOT = Path(__file__).resolve().parents[2]
GPL = "License :: OSI Approved :: GNU General Public License v3 (GPLv3)"
FEEDBACK = "Keep the import block sorted as the project does."
SAMPLE_PRICING = (ROOT / "include/sample_repo/inventory/pricing.py").read_text()
CEIL = SAMPLE_PRICING.replace("math.floor(", "math.ceil(")  # 1,799.1 cents now round up
# On the base of the escaping case: a slow test that reads models.os, an import the F401
# autofix removes as unused. The autofix is reproduced byte for byte (low risk), the pre-merge
# suite deselects the slow test on both trees alike, and post-merge verification catches it.
SLOW_TEST = (
    "import pytest\n\nfrom inventory import models\n\n\n@pytest.mark.slow\n"
    "def test_models_reexports_os() -> None:\n"
    '    assert models.os.sep == "/"\n'
)
SLOW_TEST_ID = "tests/test_reexports.py::test_models_reexports_os"


@dataclass(frozen=True)
class Case:
    """One PR: what is pushed on top of the autofix change, and what governance must do."""

    repo: str
    level: int
    files: dict[str, str]
    outcome: str  # the decision's outcome
    pr_state: str  # the PR after the run (and the verification)
    ticket_state: str
    evidence: dict[str, tuple[str, str]] = field(default_factory=dict)  # check -> status, text
    risk: str | None = None
    answer: str | None = None  # the human's option in the Airflow form
    base_files: dict[str, str] = field(default_factory=dict)  # committed before onboarding


CASES = [
    Case("a-clean", 2, {}, "auto_merge", "merged", "verified", {"tests": ("passed", "")}),
    Case(
        "b-breaks-test",
        2,
        {"inventory/pricing.py": CEIL},
        "blocked",
        "closed",
        "closed",
        {"tests": ("failed", "tests/test_pricing.py::test_discounted")},
    ),
    Case(
        "c-typosquat",
        2,
        {"requirements.txt": "reqeusts==2.31.0\n"},
        "blocked",
        "closed",
        "closed",
        {"dependency-trust": ("failed", "deptrust.typosquat")},
    ),
    Case(
        "d-gpl",
        2,
        {"requirements.txt": "gplkit==1.0.0\n"},
        "blocked",
        "closed",
        "closed",
        {"licenses": ("failed", "license-denied"), "sbom": ("passed", "gplkit")},
    ),
    Case(
        "e-secret",
        2,
        {"inventory/cloud.py": AWS},
        "blocked",
        "closed",
        "closed",
        {"secrets": ("failed", "secrets.aws-access-key")},
    ),
    Case(
        "f-ci-change",
        2,
        {".github/workflows/ci.yml": "on: push\njobs: {}\n"},
        "needs_human",
        "closed",
        "closed",
        {"tests": ("passed", "")},
        risk="high",
        answer="Reject",
    ),
    Case(
        "g-human-approves",
        1,
        {},
        "needs_human",
        "merged",
        "verified",
        {"tests": ("passed", "")},
        answer="Approve",
    ),
    Case(
        "h-changes-requested",
        1,
        {},
        "needs_human",
        "closed",
        "ready",
        {"tests": ("passed", "")},
        answer="Request changes",
    ),
    Case(
        "i-escapes",
        2,
        {},
        "auto_merge",
        "merged",
        "reverted",
        {"tests": ("passed", "-m 'not slow'"), "test-counts": ("passed", "deselected 1")},
        base_files={"tests/test_reexports.py": SLOW_TEST},
    ),
]
BY_REPO = {case.repo: case for case in CASES}


@pytest.fixture
def corpus_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default policy, F401 autofix only, each case's autonomy level, GPL denied, and a fast
    pre-merge suite (``-m 'not slow'``) beside the full post-merge one."""
    policy = yaml.safe_load((ROOT / "include/policy/default.yaml").read_text())
    policy["claim_batch"] = len(CASES)
    policy["autofix_rules"] = ["F401"]
    policy["repos"] = {case.repo: {"autonomy_level": case.level} for case in CASES}
    policy["code_scans"]["licenses"]["deny"] = ["GPL-3.0*"]
    policy["test_suites"] = {"pre_merge_pytest_args": ["-m", "not slow"]}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("TRILOOP_POLICY_PATH", str(path))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    wheels = tmp_path / "wheels"  # what the GPL case's requirement installs, offline
    make_wheel(wheels, "gplkit", "1.0.0", license_classifier=GPL, module="X = 1\n")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))


def _open_corpus(app: App, tmp: Path) -> dict[str, int]:
    """Onboard a sample copy per case, open its autofix PR and push the case's change."""
    sample = materialise_sample(app)
    for case in CASES:
        copy = tmp / "copies" / case.repo
        shutil.copytree(sample, copy)
        for name, text in case.base_files.items():
            (copy / name).write_text(text)
            git("add", name, cwd=copy)
            git("commit", "--quiet", "-m", f"add {name}", cwd=copy)
        repo = onboard(app, str(copy), name=case.repo, actor=CLI, separate=True)  # copies
        host_scan(app, repo_ref(repo), _actor(f"scan-{case.repo}"))
    claims = list(claim(app, _actor("exec-1", "claim")))
    assert len(claims) == len(CASES)
    numbers = {}
    for claimed in claims:
        repo_id, number = _open_pr(app, claimed)
        numbers[repo_id] = number
        if BY_REPO[repo_id].files:
            (tmp / repo_id).mkdir()
            _push_to_pr(app, tmp / repo_id, number, BY_REPO[repo_id].files, repo_id=repo_id)
    return numbers


def _answer(index: int, details: dict[str, Any]) -> dict[str, Any]:
    repo = str(details["subject"]).split()[1].split("#")[0]
    chosen = BY_REPO[repo].answer
    assert chosen is not None, f"{repo} was not expected to wait for a human"
    feedback = FEEDBACK if chosen == "Request changes" else ""
    return {"chosen_options": [chosen], "params_input": {"feedback": feedback}}


@pytest.mark.usefixtures("corpus_policy")
def test_the_governance_corpus(factory: dict[str, Any], triloop_home: Path, tmp_path: Path) -> None:
    app: App = bootstrap(home=triloop_home)
    numbers = _open_corpus(app, tmp_path)
    asked = sum(1 for case in CASES if case.answer)
    reviewer = Reviewer("triloop_governance", "pull_request.human_review", _answer, asked).start()
    assert str(factory["triloop_governance"].test().state) == "success"
    reviewer.join()
    assert reviewer.errors == []
    assert sorted(reviewer.status.values()) == [200] * asked
    assert str(factory["triloop_verification"].test().state) == "success"

    with app.uow() as session:
        for case in CASES:
            pr = session.scalars(
                select(PullRequest).where(
                    PullRequest.repo_id == case.repo, PullRequest.number == numbers[case.repo]
                )
            ).one()
            ticket = session.get_one(Ticket, pr.ticket_id)
            [decision] = session.scalars(
                select(DecisionRow).where(DecisionRow.pull_request_id == pr.id)
            ).all()
            checks = {
                c.check_id: c
                for c in session.scalars(
                    select(CheckRun).where(CheckRun.pull_request_id == pr.id)
                ).all()
            }
            seen = (decision.outcome, pr.state, ticket.state)
            assert seen == (case.outcome, case.pr_state, case.ticket_state), (
                case.repo,
                decision.reasons,
                {k: (c.status, c.excerpt[-300:]) for k, c in checks.items()},
            )
            assert checks and all(c.command for c in checks.values()), case.repo
            for check_id, (status, text) in case.evidence.items():
                row = checks[check_id]
                assert row.status == status, (case.repo, check_id, row.excerpt[-500:])
                assert text in row.excerpt + " ".join(row.rule_ids) + row.command, (
                    case.repo,
                    check_id,
                    row.excerpt[-500:],
                )
            if case.risk:
                assert decision.risk == case.risk, (case.repo, decision.reasons)
            if case.outcome == "auto_merge":  # low risk only as a reproduced autofix
                assert any("reproduced byte for byte" in r for r in decision.reasons), case.repo

        feedback = session.get_one(
            Ticket,
            session.scalars(
                select(PullRequest.ticket_id).where(PullRequest.repo_id == "h-changes-requested")
            ).one(),
        )
        assert FEEDBACK in (feedback.last_error or "")

        # The escaped defect: counted once, and a revert PR awaits governance like any other.
        [defect] = session.scalars(select(EscapedDefect)).all()
        escaped = session.scalars(
            select(PullRequest).where(PullRequest.repo_id == "i-escapes")
        ).all()
        assert defect.pull_request_id == next(p.id for p in escaped if p.state == "merged")
        assert SLOW_TEST_ID in json.dumps(defect.failing_tests)
        [revert] = [p for p in escaped if p.branch.startswith("triloop/revert-")]
        assert revert.state == "open"
        assert session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == "postmerge.reverted")
        ).one()
        assert {r.id for r in session.scalars(select(Repo))} == set(BY_REPO)
