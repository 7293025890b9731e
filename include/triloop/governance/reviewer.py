"""The optional LLM reviewer: an agent harness reads the pull request and may add a blocking check.

It runs through the harness mechanism of execution (the adapter's argv, env and prompt in
/out/request.json, the sandbox's ``agent`` subcommand, the harness's image, egress allowlist,
API key connection and budgets), with ``mode: review``: the merged checkout is mounted
read-only, the sandbox checks nothing in it changed and leaves no patch, and the model writes
its findings to /out/review.json. ``review_checks`` turns that into one ``llm-review``
CheckResult; ``gate_failures`` makes sure a green review never stands in for the
deterministic checks (no deterministic check run: nothing merges).
"""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path
from typing import Any

from sqlalchemy import select

from triloop.adapters.git import GitError, git
from triloop.bootstrap import App
from triloop.domain.budget import ticket_budget
from triloop.domain.contracts import CheckResult, HarnessRequest, ReviewRequest
from triloop.errors import PermanentError
from triloop.execution.harnesses import harness_for
from triloop.execution.harnesses.settings import sandbox_settings
from triloop.governance.review_findings import CHECK_ID, error_check, output_check
from triloop.store import tickets as ticket_store
from triloop.store.models import PullRequest

log = logging.getLogger(__name__)
OUT_DIR = "review-out"
NO_DETERMINISTIC = "deterministic checks (none ran)"


class ReviewerOff(PermanentError):
    """No reviewer is configured (policy ``reviewer.harness`` is unset): nothing to run."""


def review_out(app: App, merged_root: Path) -> str:
    """The reviewer's /out beside the merged checkout ('' when no reviewer is configured)."""
    if not app.policy.reviewer.enabled:
        return ""
    out = merged_root / OUT_DIR
    out.mkdir(exist_ok=True)
    out.chmod(0o777)  # the sandbox's non-root user writes here
    return str(out)


def review_request(app: App, review: ReviewRequest, title: str, rule: str) -> HarnessRequest:
    """What the reviewer harness is asked: the PR's title and diff, the policy's budget.

    Derived from the review, the PR's title, its ticket's rule and the policy alone, so
    ``decide`` rebuilds the same request instead of trusting anything the sandbox could have
    rewritten in /out.
    """
    policy = app.policy.reviewer
    if policy.harness is None:
        raise ReviewerOff("no LLM reviewer configured (policy reviewer.harness is unset)")
    if not review.review_out:
        raise PermanentError(f"{review.repo_id}#{review.number}: no reviewer output directory")
    ws = Path(review.merged_workspace)
    try:
        diff = git("diff", "--no-ext-diff", "--no-textconv", review.base_sha, "HEAD", cwd=ws)
        # -z: the names as they are (not C-quoted); the prompt fences and escapes them.
        names = git("diff", "-z", "--name-only", review.base_sha, "HEAD", cwd=ws)
        paths = [name for name in names.split("\0") if name]
    except GitError as exc:
        raise PermanentError(f"cannot diff {review.base_sha[:12]}..HEAD in {ws}: {exc}") from exc
    return HarnessRequest(
        harness=policy.harness,
        mode="review",
        ticket_id=review.ticket_id,
        rule=rule,
        paths=paths,
        title=title,
        details=diff or "(empty diff)",
        budget=policy.budget(ticket_budget(app.policy.budgets)),
        repo_id=review.repo_id,
        base_sha=review.base_sha,
        workspace=review.merged_workspace,
        output_dir=review.review_out,
    )


def prepare_llm_review(app: App, review: ReviewRequest) -> dict[str, Any]:
    """Write the reviewer's /out/request.json; what its SandboxOperator needs (XCom-sized).

    Raises ReviewerOff when no reviewer is configured (the DAG skips the review with it).
    """
    with app.uow() as session:
        pr = session.scalar(
            select(PullRequest).where(
                PullRequest.repo_id == review.repo_id, PullRequest.number == review.number
            )
        )
        if pr is None:
            raise PermanentError(f"pull request #{review.number} not in {review.repo_id}")
        title, rule = pr.title, ticket_store.get(session, pr.ticket_id).rule
    request = review_request(app, review, title, rule)
    harness = harness_for(request.harness, app.policy.harnesses.get(request.harness))
    Path(request.output_dir, "request.json").write_text(
        json.dumps(harness.request_document(request))
    )
    settings = sandbox_settings(app.policy, request).model_dump(mode="json")
    log.info("LLM review of %s#%s by %s", review.repo_id, review.number, request.harness)
    return {**request.model_dump(mode="json"), **settings, "command": harness.command(request)}


def review_checks(app: App, review: ReviewRequest, title: str, rule: str) -> list[CheckResult]:
    """The ``llm-review`` check ([] when no reviewer is configured); errors block, never raise.

    ``title`` and ``rule`` are the PR's and its ticket's, as the caller's session has them.
    """
    if not app.policy.reviewer.enabled:
        return []
    try:
        request = review_request(app, review, title, rule)
    except PermanentError as exc:
        return [error_check(f"llm review of {review.repo_id}#{review.number}", str(exc))]
    harness = harness_for(request.harness, app.policy.harnesses.get(request.harness))
    image = sandbox_settings(app.policy, request).image
    command = (
        f"triloop-harness {shlex.join(harness.command(request))}  # in {image}, /workspace ="
        f" {review.base_sha[:12]}+{review.head_sha[:12]} read-only, /out/request.json from"
        " governance's prepare_llm_review"
    )
    return [output_check(harness, request, app.policy.reviewer, command)]


def gate_failures(checks: list[CheckResult]) -> list[str]:
    """Check ids that keep a PR from merging: any not green, and none if only the LLM ran."""
    failed = [c.check_id for c in checks if c.status != "passed"]
    if not any(c.check_id != CHECK_ID for c in checks):
        failed.append(NO_DETERMINISTIC)
    return failed
