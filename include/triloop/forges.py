"""Choosing each repository's forge (``repos.<id>.forge`` in the policy): local or GitHub.

The local forge is the default; a ``github`` forge is built on the session's transaction with
the PyGithub client of its Airflow connection, fetched only when first used (at run time, never
at parse time). Workspaces fetch from where the forge says (:func:`clone_source`): the onboarded
bare repository, or GitHub's clone URL with the token in git's environment only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from triloop.adapters.local_forge import LocalForge
from triloop.adapters.protocols import CloneSource, Forge
from triloop.bootstrap import App
from triloop.domain.contracts import RepoRef
from triloop.domain.forge_policy import ForgePolicy
from triloop.tracking import github_client

if TYPE_CHECKING:
    from github import Github


def forge_policy(app: App, repo_id: str) -> ForgePolicy:
    repo = app.policy.repos.get(repo_id)
    return repo.forge if repo is not None else ForgePolicy()


def forge_for(
    app: App, session: Session, repo_id: str, *, client: Callable[[str], Github] = github_client
) -> Forge:
    """The forge the policy names for ``repo_id``, on ``session``'s transaction."""
    chosen = forge_policy(app, repo_id)
    if chosen.kind == "local":
        return LocalForge(session)
    from triloop.adapters.github_forge import GitHubForge

    assert chosen.repo is not None  # the policy refuses a github forge without one
    return GitHubForge(
        session, lambda: client(chosen.conn_id), chosen.repo, clone_url=chosen.clone_url
    )


def clone_source(app: App, repo: RepoRef) -> CloneSource:
    """Where workspaces of ``repo`` fetch from, and git's environment for it, per its forge."""
    with app.uow() as session:
        return forge_for(app, session, repo.repo_id).clone_source(repo)
