"""Governance against hostile pull requests: the adversarial corpus, through the real DAG.

One repository (the sample, plus one module per case with an unused import) gets an honest
F401 autofix PR per case from execution, and then the case's change is pushed on its branch as
a steered harness or a person who has read Triloop's source would (tests/e2e/adversarial_cases
.py, the table and why). The governance DAG runs once under ``dag.test`` with real sandboxes, at
autonomy level 2, a reviewer rejecting every PR that waits for a human. Each PR must end as its
case says: blocked by a named check and rule, or sent to a human with a named reason. Nothing
merges. (A clean autofix PR still merges at level 2 under the same gates: the governance
corpus's ``a-clean``.)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from triloop.adapters.git import git
from triloop.bootstrap import App, bootstrap
from triloop.discovery.service import repo_ref
from triloop.execution.service import claim, finish, prepare
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import CLI
from triloop.store.models import CheckRun, DecisionRow, PullRequest, Repo, Ticket

from tests.e2e.adversarial_cases import BY_NAME, CASES, Case, Content, Edit, Link
from tests.integration.test_control_plane import _actor
from tests.support.hitl import Reviewer
from tests.support.rows import autofix_on_host, host_scan

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
ROOT = Path(__file__).resolve().parents[2]
REPO = "hostile"
MODULE = '"""Corpus module {n}."""\n\nimport os\n\n\ndef value() -> int:\n    return {n}\n'


def module(index: int) -> str:
    return f"inventory/case_{index:02d}.py"


@pytest.fixture
def hostile_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default policy at autonomy level 2, F401 autofix only, a 64 MB /out budget."""
    policy = yaml.safe_load((ROOT / "include/policy/default.yaml").read_text())
    policy["claim_batch"] = 32
    policy["autofix_rules"] = ["F401"]
    policy["repos"] = {REPO: {"autonomy_level": 2}}
    policy["sandbox_resources"]["out_disk_mb"] = 64
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("TRILOOP_POLICY_PATH", str(path))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")


def _base(app: App, tmp: Path) -> Path:
    """The sample with its own F401 fixed and one module per case that has one."""
    copy = tmp / REPO
    shutil.copytree(materialise_sample(app), copy)
    models = copy / "inventory/models.py"
    models.write_text(models.read_text().replace("import os\nimport sys\n", ""))
    for index in range(len(CASES)):
        (copy / module(index)).write_text(MODULE.format(n=index))
    git("add", "--all", cwd=copy)
    git("commit", "--quiet", "-m", "one module per corpus case", cwd=copy)
    return copy


def _write(clone: Path, name: str, content: Content) -> None:
    path = clone / name
    if content is None:
        git("rm", "--quiet", "--", name, cwd=clone)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Link):
        path.unlink(missing_ok=True)
        os.symlink(content.target, path)
    elif isinstance(content, Edit):
        path.write_text(content.change(path.read_text()))
    else:
        path.write_text(content)
    git("add", "--force", "--", name, cwd=clone)


def _push(clone: Path, branch: str, case: Case, own: str) -> None:
    """The case's change on top of the PR's branch, pushed as a second commit."""
    git("checkout", "--quiet", branch, cwd=clone)
    for name, content in case.files.items():
        _write(clone, own if name == "{own}" else name, content)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    git("-c", "user.email=t@t", "commit", "--quiet", "-m", case.name, cwd=clone, env=env)
    git("push", "--quiet", "origin", branch, cwd=clone)


def _open_corpus(app: App, tmp: Path) -> dict[int, Case]:
    """Onboard the repository, open one autofix PR per case, push each case's change."""
    repo = onboard(app, str(_base(app, tmp)), name=REPO, actor=CLI)
    host_scan(app, repo_ref(repo), _actor("scan"))
    claims = [(run, c) for run in ("exec-1", "exec-2") for c in claim(app, _actor(run, "claim"))]
    assert len(claims) == len(CASES)
    with app.uow() as session:
        remote = session.get_one(Repo, REPO).remote
    clone = tmp / "pusher"
    git("clone", "--quiet", str(remote), str(clone), cwd=tmp)
    by_number = {}
    for run, claimed in claims:
        number = _open_pr(app, claimed, run)
        with app.uow() as session:
            pr = session.scalars(
                select(PullRequest).where(PullRequest.repo_id == REPO, PullRequest.number == number)
            ).one()
            branch, path = pr.branch, session.get_one(Ticket, pr.ticket_id).path
        case = CASES[int(path.rsplit("_", 1)[1].removesuffix(".py"))]
        git("fetch", "--quiet", "origin", f"{branch}:{branch}", cwd=clone)
        _push(clone, branch, case, path)
        by_number[number] = case
    return by_number


def _open_pr(app: App, claimed: Any, run: str) -> int:
    """What the autofix harness does, on the host, then execution opens the PR."""
    request = prepare(app, claimed, _actor(run, "prepare"))
    autofix_on_host(request)
    result = {
        "schema_version": 1,
        "harness": "autofix",
        "ticket_id": claimed.ticket_id,
        "status": "changed",
        "files_changed": request.paths,
    }
    Path(request.output_dir, "result.json").write_text(json.dumps(result))
    pr = finish(app, request, _actor(run, "open_pr"))
    assert pr is not None
    return pr.number


def _reject(index: int, details: dict[str, Any]) -> dict[str, Any]:
    return {"chosen_options": ["Reject"], "params_input": {"feedback": ""}}


def _shown(decision: DecisionRow, checks: dict[str, CheckRun]) -> str:
    lines = [f"{decision.outcome} ({decision.risk}): {decision.reasons}"]
    lines += [f"  {k}: {c.status} {c.rule_ids} {c.excerpt[-300:]!r}" for k, c in checks.items()]
    return "\n".join(lines)


@pytest.mark.usefixtures("hostile_policy")
def test_hostile_pull_requests(factory: dict[str, Any], triloop_home: Path, tmp_path: Path) -> None:
    app: App = bootstrap(home=triloop_home)
    by_number = _open_corpus(app, tmp_path)
    asked = sum(1 for case in CASES if case.outcome == "needs_human")
    reviewer = Reviewer(
        "triloop_governance", "pull_request.human_review", _reject, asked, deadline_s=2400
    ).start()
    assert str(factory["triloop_governance"].test().state) == "success"
    reviewer.join()
    assert reviewer.errors == []

    wrong = []
    with app.uow() as session:
        prs = session.scalars(select(PullRequest).where(PullRequest.repo_id == REPO)).all()
        assert {pr.number for pr in prs} == set(by_number)
        for pr in prs:
            case = by_number[pr.number]
            decisions = session.scalars(
                select(DecisionRow).where(DecisionRow.pull_request_id == pr.id)
            ).all()
            checks = {
                c.check_id: c
                for c in session.scalars(
                    select(CheckRun).where(CheckRun.pull_request_id == pr.id)
                ).all()
            }
            if len(decisions) != 1:
                wrong.append(f"{case.name}: {len(decisions)} decisions")
                continue
            [decision] = decisions
            missing = []
            for want in case.expect:
                if not want.check:
                    if not any(want.text in r for r in decision.reasons):
                        missing.append(f"reason {want.text!r}")
                    continue
                row = checks.get(want.check)
                seen = row and row.excerpt + " " + " ".join(row.rule_ids) + " " + row.command
                if row is None or row.status != want.status or want.text not in str(seen):
                    missing.append(f"{want.check} {want.status} {want.text!r}")
            if decision.outcome != case.outcome or missing or pr.state == "merged":
                wrong.append(
                    f"{case.name} (hole {case.hole}): want {case.outcome}, missing {missing}\n"
                    + _shown(decision, checks)
                )
    assert not wrong, "\n\n".join(wrong)
    assert len(BY_NAME) >= 40 and {c.hole for c in CASES} == set(range(1, 9))
    assert sorted(reviewer.status.values()) == [200] * asked
