"""Governance's decision path blocks a typosquatted dependency and a hard-coded AWS key.

A PR opened by the autofix harness gets one more commit on its branch (what a harness or a
person could push), then governance prepares, checks and decides it. The sandbox's outputs are
written on the host: ruff as in test_control_plane, and semgrep with the real rules directory
(include/semgrep), its rule ids prefixed as in the image.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from triloop.adapters.git import git
from triloop.bootstrap import App
from triloop.store.models import CheckRun, PullRequest, Repo

from tests.integration.test_control_plane import _actor, _fake_sandbox_outputs, _pr_for_first_ticket
from tests.support.semgrep import semgrep_env, semgrep_scan

ROOT = Path(__file__).resolve().parents[2]
SCAN = semgrep_scan(ROOT / "include" / "semgrep")
AWS = 'AWS_ACCESS_KEY_ID = "AKIAZ7Q4N2L5X8W3R6TY"\nAWS_SECRET_ACCESS_KEY = "{}"\n'.format(
    "q8Vn2Lr5Tz9Wb3Kd7Hf1Mx4Pc6Js0Ga8Ye2Ru5No"
)


def _push_to_pr(
    app: App, tmp: Path, number: int, files: dict[str, str], *, repo_id: str = "sample"
) -> None:
    """Push ``files`` on top of PR ``number``'s branch in the (local forge) repository."""
    with app.uow() as session:
        pr = session.scalars(
            select(PullRequest).where(PullRequest.repo_id == repo_id, PullRequest.number == number)
        ).one()
        branch, remote = pr.branch, session.get_one(Repo, repo_id).remote
    clone = tmp / "pusher"
    git("clone", "--quiet", "--branch", branch, str(remote), str(clone), cwd=tmp)
    for name, text in files.items():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text(text)
    git("add", *files, cwd=clone)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    git("-c", "user.email=t@t", "commit", "--quiet", "-m", "more", cwd=clone, env=env)
    git("push", "--quiet", "origin", branch, cwd=clone)


def _semgrep_outputs(review) -> None:  # type: ignore[no-untyped-def]
    """semgrep on each tree with include/semgrep, as the image's `scan` writes semgrep.json."""
    for src, out in (
        (review.base_workspace, review.base_out),
        (review.merged_workspace, review.merged_out),
    ):
        proc = subprocess.run(
            [*SCAN, "."],
            cwd=src,
            env=semgrep_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        report = json.loads(proc.stdout)
        for result in report["results"]:
            rule = result["check_id"].split("include.semgrep.", 1)[-1]  # the rules dir's prefix
            result["check_id"] = "opt.triloop.semgrep." + rule
        Path(out, "semgrep.json").write_text(json.dumps(report))


@pytest.mark.parametrize(
    ("files", "check_id", "rule_id", "named"),
    [
        (
            {"requirements.txt": "reqeusts==2.31.0\n"},
            "dependency-trust",
            "deptrust.typosquat",
            "requirements.txt:1: reqeusts==2.31.0: deptrust.typosquat: looks like 'requests'",
        ),
        ({"cloud.py": AWS}, "secrets", "secrets.aws-access-key", "cloud.py:1: "),
    ],
)
def test_a_pr_with_a_typosquat_or_a_secret_is_blocked_with_its_rule(
    app: App, tmp_path: Path, files: dict[str, str], check_id: str, rule_id: str, named: str
) -> None:
    from triloop.domain.policy import RepoPolicy
    from triloop.governance.service import decide, prepare_review, select_reviews

    app.policy.repos["sample"] = RepoPolicy(autonomy_level=3)
    repo_id, number = _pr_for_first_ticket(app, tmp_path)
    _push_to_pr(app, tmp_path, number, files)
    reviewer = _actor("gov-1", "decide")
    assert select_reviews(app, reviewer) == [{"repo_id": repo_id, "number": number}]
    review = prepare_review(app, repo_id, number, reviewer)
    _fake_sandbox_outputs(review)
    _semgrep_outputs(review)
    decision = decide(app, review, reviewer)
    assert decision.outcome == "blocked"
    assert decision.reasons[0] == f"checks not green: {check_id}"
    with app.uow() as session:
        [row] = session.scalars(select(CheckRun).where(CheckRun.status != "passed")).all()
        pr = session.scalars(select(PullRequest)).one()
        assert (row.check_id, row.status, pr.state) == (check_id, "failed", "closed")
        assert rule_id in row.rule_ids and named in row.excerpt
        assert row.command
        if check_id == "secrets":
            assert "q8Vn2Lr5" not in row.excerpt  # the evidence names the rule, not the secret
