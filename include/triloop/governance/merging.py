"""Merging an approved pull request through its repository's forge, exactly as it was checked.

Governance checks a pull request on the merge of its head into the base as it was then
(``Decision.head_sha``, ``Decision.base_sha``); the forge (local or GitHub, per the policy) merges
only that pair:

- **The base moved** (something else landed first): the forge raises
  :class:`~triloop.adapters.protocols.BaseMoved` instead of merging, and the PR goes back to
  ``pr_open`` with no reviewer. The next governance run (the ``triloop://pull_requests`` event
  of a run that merged something, else the half-hourly schedule) picks it up again, builds the
  merge on the new base and re-runs every check before deciding again. Triloop never updates the
  PR's branch itself: the checks always run on a fresh merge of head into the current base,
  which is what the forge's merge commit will contain.
- **The head moved** (someone pushed to Triloop's branch): refused with a permanent error; code
  Triloop did not produce is never re-checked into a merge.

A transient forge error (the network, GitHub's 5xx) is raised as it is, for Airflow to retry;
any other refusal is permanent.
"""

from __future__ import annotations

import logging

from triloop.adapters.protocols import BaseMoved, ForgeError
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.domain.contracts import Decision
from triloop.domain.states import PullRequestState, TicketState
from triloop.errors import PermanentError
from triloop.forges import forge_for
from triloop.store import pull_requests
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import PullRequest, Repo

log = logging.getLogger(__name__)


def merge(app: App, decision: Decision, actor: Actor) -> dict[str, str | int] | None:
    """Merge an approved PR through the forge if neither its head nor its base moved.

    Returns the merge (also when it happened before: a cleared task merges nothing twice), or
    None when the PR went back for a recheck or another run reviews it now.
    """
    with app.uow() as session:
        pr = pull_requests.get(session, decision.repo_id, decision.number)
        repo = repo_ref(session.get_one(Repo, decision.repo_id))
        ticket = ticket_store.get(session, pr.ticket_id)
        if pr.state == PullRequestState.MERGED.value:
            return merged(pr)
        if pr.review_owner != actor.run_owner:  # sent back for a recheck since: not ours now
            return None
        if ticket.state == TicketState.IN_REVIEW.value:
            ticket_store.transition(session, ticket, "approve", actor, payload={"by": actor.name})
        try:
            info = forge_for(app, session, repo.repo_id).merge(
                repo,
                pr.number,
                expected_head_sha=decision.head_sha,
                expected_base_sha=decision.base_sha,
            )
        except BaseMoved as exc:
            log.info("%s#%s: %s", repo.repo_id, pr.number, exc)
            ticket_store.transition(session, ticket, "recheck", actor, payload={"reason": str(exc)})
            pr.review_owner = None
            return None
        except ForgeError as exc:
            if exc.transient:
                raise
            raise PermanentError(str(exc)) from exc
        ticket_store.transition(
            session, ticket, "merge", actor, payload={"merge_sha": info.merge_sha}
        )
        record(
            session,
            actor,
            "forge.merge",
            repo_id=repo.repo_id,
            ticket_id=ticket.id,
            pull_request_id=pr.id,
            idempotency_key=f"merge:{repo.repo_id}#{pr.number}",
            payload={"merge_sha": info.merge_sha},
        )
        return merged(pr)


def merged(pr: PullRequest) -> dict[str, str | int]:
    return {
        "repo_id": pr.repo_id,
        "number": pr.number,
        "ticket_id": pr.ticket_id,
        "merge_sha": pr.merge_sha or "",
    }
