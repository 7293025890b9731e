"""Pull requests Triloop closes are closed on GitHub; discovery scans GitHub's default branch.

The loops' service functions on the host (ruff stands in for the sandbox, as in
test_control_plane) against the fake GitHub and git smart HTTP on loopback. A blocked decision,
a reviewer's reject or request changes, and a pull request that no longer merges each close the
pull request on GitHub with the reason as a comment, once: when GitHub's answer to the close is
lost, the re-run finds it closed and closes nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from triloop.adapters.github_common import GitHubForgeError
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.domain.forge_policy import ForgePolicy
from triloop.domain.policy import RepoPolicy
from triloop.governance.service import NotMergeable, decide, prepare_review, select_reviews
from triloop.governance.verdicts import REJECT, REQUEST_CHANGES, apply_verdict
from triloop.onboarding import materialise_sample, onboard
from triloop.store.models import Effect, PullRequest, Repo, Scan, Ticket

from tests.integration.test_control_plane import _actor, _fake_sandbox_outputs, _pr_for_first_ticket
from tests.support.github_repo import TOKEN, GitHubRepo, git, github_repo
from tests.support.rows import host_scan

CLOSE = r"/repos/acme/sample/pulls/\d+"


@pytest.fixture
def github(app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubRepo]:
    """The sample onboarded, GitHub's copy of it, and the policy naming GitHub as its forge."""
    row = onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    with github_repo(Path(row.remote), tmp_path / "github", monkeypatch) as gh:
        app.policy.repos["sample"] = RepoPolicy(
            autonomy_level=1, forge=ForgePolicy.model_validate(gh.forge)
        )
        yield gh


def _push_to_main(github: GitHubRepo, tmp: Path, files: dict[str, str]) -> str:
    """Someone pushes ``files`` to main on GitHub (over HTTP, with the token)."""
    clone = tmp / f"push-{len(list(tmp.glob('push-*')))}"
    url = github.clone_url.replace("http://", f"http://x-access-token:{TOKEN}@")
    git("clone", "-q", "--branch", "main", url, str(clone), cwd=tmp)
    for name, text in files.items():
        (clone / name).write_text(text)
    git("add", "-A", cwd=clone)
    git("commit", "-qm", f"push {sorted(files)}", cwd=clone)
    git("push", "-q", "origin", "HEAD:main", cwd=clone)
    return git("rev-parse", "HEAD", cwd=clone)


def _states(app: App) -> tuple[str, str]:
    with app.uow() as session:
        pr = session.scalars(select(PullRequest)).one()
        return pr.state, session.get_one(Ticket, pr.ticket_id).state


def _close_effects(app: App) -> list[str]:
    with app.uow() as session:
        return sorted(session.scalars(select(Effect.key).where(Effect.key.contains("close:"))))


def test_a_blocked_pull_request_is_closed_on_github_once(
    app: App, github: GitHubRepo, tmp_path: Path
) -> None:
    repo_id, number = _pr_for_first_ticket(app, tmp_path)
    gov = _actor("gov-1", "decide")
    select_reviews(app, gov)
    review = prepare_review(app, repo_id, number, gov)
    _fake_sandbox_outputs(review, tests_status="failed")
    github.fake.drop_next("PATCH", CLOSE)  # GitHub closes it, its answer is lost
    with pytest.raises(GitHubForgeError, match=f"close pull request acme/sample#{number}"):
        decide(app, review, gov)
    assert github.pulls[number]["state"] == "closed"
    assert _states(app) == ("open", "in_review")  # the decision rolled back as a whole

    decision = decide(app, review, gov)  # Airflow's retry
    assert decision.outcome == "blocked"
    assert github.fake.count("PATCH", CLOSE) == 1
    assert github.pulls[number]["state"] == "closed" and not github.pulls[number]["merged"]
    evidence, closing = github.comments(number)
    assert "| tests | failed |" in evidence
    assert closing.startswith("Blocked by governance:")
    assert _states(app) == ("closed", "closed")
    assert _close_effects(app) == [f"close:{repo_id}#{number}", f"comment:close:{repo_id}#{number}"]


@pytest.mark.parametrize(
    ("chosen", "ticket_state"), [(REJECT, "closed"), (REQUEST_CHANGES, "ready")]
)
def test_a_reviewers_verdict_closes_the_pull_request_on_github(
    app: App, github: GitHubRepo, tmp_path: Path, chosen: str, ticket_state: str
) -> None:
    repo_id, number = _pr_for_first_ticket(app, tmp_path)
    gov = _actor("gov-1", "decide")
    select_reviews(app, gov)
    review = prepare_review(app, repo_id, number, gov)
    _fake_sandbox_outputs(review)
    decision = decide(app, review, gov)
    assert decision.outcome == "needs_human" and github.pulls[number]["state"] == "open"

    github.fake.drop_next("PATCH", CLOSE)
    with pytest.raises(GitHubForgeError, match="close pull request"):
        apply_verdict(app, decision, chosen, gov, feedback="not this way", by="alice")
    assert _states(app) == ("open", "in_review")
    for _ in range(2):  # the retry, then a cleared task
        result = apply_verdict(app, decision, chosen, gov, feedback="not this way", by="alice")
        assert result["applied"] and result["ticket_state"] == ticket_state
    assert github.fake.count("PATCH", CLOSE) == 1 and github.pulls[number]["state"] == "closed"
    assert github.comments(number)[-1].startswith(f"Closed: {chosen} by alice: not this way")
    assert _states(app) == ("closed", ticket_state)


def test_a_pull_request_that_no_longer_merges_is_closed_on_github(
    app: App, github: GitHubRepo, tmp_path: Path
) -> None:
    repo_id, number = _pr_for_first_ticket(app, tmp_path)
    branch = github.pulls[number]["head"]["ref"]
    changed = git("diff", "--name-only", f"main...{branch}", cwd=github.bare).splitlines()
    _push_to_main(github, tmp_path, {name: "conflict = 1\n" for name in changed})
    gov = _actor("gov-1", "decide")
    select_reviews(app, gov)
    with pytest.raises(NotMergeable, match=f"PR #{number} in {repo_id} does not merge cleanly"):
        prepare_review(app, repo_id, number, gov)
    assert github.pulls[number]["state"] == "closed"
    assert "does not merge into its base" in github.comments(number)[-1]
    assert _states(app) == ("closed", "ready")


def test_discovery_scans_the_default_branch_on_github(
    app: App, github: GitHubRepo, tmp_path: Path
) -> None:
    """A commit pushed to GitHub after onboarding is scanned; the onboarded mirror never saw it."""
    with app.uow() as session:
        repo = repo_ref(session.get_one(Repo, "sample"))
    head = _push_to_main(github, tmp_path, {"late_arrival.py": "import os\n"})
    assert git("rev-parse", "main", cwd=Path(repo.remote)) != head

    created = host_scan(app, repo, _actor("scan-1"))
    with app.uow() as session:
        scan = session.scalars(select(Scan)).one()
        paths = {t.path for t in session.scalars(select(Ticket).where(Ticket.id.in_(created)))}
    assert scan.head_sha == head
    assert "late_arrival.py" in paths
