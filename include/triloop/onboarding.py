"""Onboarding a repository: validate it, mirror it into the forge, record it.

Bad input (not a git repo, an unreachable remote, no Python files) is refused before anything
is created; the refusal itself is written to the ledger. A repository already onboarded (same
origin, or the same root commit from another clone, path or name) is recognised, not
duplicated.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from triloop.adapters.git import GitError, git, is_git_repo
from triloop.bootstrap import App
from triloop.config import PROJECT_ROOT
from triloop.domain.policy import Policy
from triloop.store.ledger import Actor, record
from triloop.store.models import Repo

SAMPLE_SOURCE = PROJECT_ROOT / "include/sample_repo"
SAMPLE_DATE = "2026-01-01T00:00:00+00:00"


class OnboardingError(ValueError):
    """The repository cannot be onboarded; the message names it and says why."""


def _repo_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not slug:
        raise OnboardingError(f"cannot derive a repository id from name {name!r}")
    return slug[:64]


def _source(target: str) -> str:
    """Validate what the user gave and return a git URL for it."""
    path = Path(target).expanduser()
    looks_like_url = "://" in target or re.match(r"^[\w.-]+@[\w.-]+:", target)
    if not looks_like_url:
        if not path.exists():
            raise OnboardingError(f"{target}: no such file or directory")
        if not is_git_repo(path):
            raise OnboardingError(f"{target}: not a git repository")
        return str(path.resolve())
    try:
        git("ls-remote", "--heads", target, timeout=60)
    except (GitError, TimeoutError) as exc:
        raise OnboardingError(f"{target}: remote is unreachable ({exc})") from exc
    return target


@dataclass(frozen=True)
class Onboarded:
    """What onboarding did: the repository, and whether it was already there (and why)."""

    repo: Repo
    existing: str = ""  # empty: newly onboarded; else how it was recognised

    def message(self, policy: Policy) -> str:
        level = policy.autonomy_for(self.repo.id)
        how = (
            f"policy repos.{self.repo.id}.autonomy_level"
            if self.repo.id in policy.repos
            else "policy default_autonomy_level"
        )
        where = f"{self.repo.origin} -> forge {self.repo.remote} ({self.repo.default_branch})"
        head = (
            f"{self.repo.id} is already onboarded ({self.existing}): {where}; nothing new"
            " (pass --separate to onboard it as a repository of its own, a fork)"
            if self.existing
            else f"onboarded {self.repo.id}: {where}"
        )
        return (
            f"{head}\nautonomy level {level} ({LEVELS[level]}), from {how}; change it under"
            f" repos: {self.repo.id}: autonomy_level in the policy file (TRILOOP_POLICY_PATH)"
        )


LEVELS = {
    0: "observe only",
    1: "a human approves every PR",
    2: "auto-merge low risk",
    3: "auto-merge low and medium risk",
}


def onboard(
    app: App, target: str, *, name: str | None = None, actor: Actor, separate: bool = False
) -> Repo:
    """Onboard ``target`` (a path or git URL); see :func:`onboard_repo`."""
    return onboard_repo(app, target, name=name, actor=actor, separate=separate).repo


def onboard_repo(
    app: App, target: str, *, name: str | None = None, actor: Actor, separate: bool = False
) -> Onboarded:
    """Onboard ``target`` (a path or git URL), or recognise it.

    Idempotent for the same name and origin. A repository already onboarded from the same
    origin, or whose default branch has the same root commit (another clone, path or name), is
    recognised and returned as it is, with a ledger row saying so, unless ``separate`` (a fork
    that should be a repository of its own).
    """
    try:
        source = _source(target)
        repo_id = _repo_id(name or Path(source.rstrip("/")).name.removesuffix(".git"))
        with app.uow() as session:
            existing = session.get(Repo, repo_id)
            if existing is not None:
                if existing.origin != source:
                    raise OnboardingError(
                        f"{target}: repository id {repo_id!r} is already onboarded from "
                        f"{existing.origin}; pass another --name"
                    )
                return Onboarded(existing, "same name and origin")
            same = session.scalars(select(Repo).where(Repo.origin == source)).first()
        if same is not None and not separate:
            return _recognised(app, actor, target, same, f"same origin {source}")
        with _staged(source, target) as (staging, default_branch, root):
            if not separate:
                with app.uow() as session:
                    same = session.scalars(select(Repo).where(Repo.root_commit == root)).first()
                if same is not None:
                    return _recognised(app, actor, target, same, f"same root commit {root[:12]}")
            forge_path = app.settings.forge_dir / f"{repo_id}.git"
            if not forge_path.exists():
                forge_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(staging), forge_path)
    except OnboardingError as exc:
        with app.uow() as session:
            record(
                session,
                actor,
                "repo.onboard",
                outcome="rejected",
                error=str(exc),
                payload={"target": target},
            )
        raise
    with app.uow() as session:
        repo = Repo(
            id=repo_id,
            name=name or repo_id,
            origin=source,
            remote=str(forge_path),
            default_branch=default_branch,
            root_commit=root,
        )
        session.add(repo)
        record(
            session,
            actor,
            "repo.onboard",
            repo_id=repo_id,
            payload={"target": target, "remote": str(forge_path), "root_commit": root},
        )
    return Onboarded(repo)


def _recognised(app: App, actor: Actor, target: str, repo: Repo, why: str) -> Onboarded:
    """The repository is already here: a ledger row says so, nothing else changes."""
    with app.uow() as session:
        record(
            session,
            actor,
            "repo.onboard",
            repo_id=repo.id,
            outcome="existing",
            payload={"target": target, "recognised_by": why},
        )
    return Onboarded(repo, why)


@contextmanager
def _staged(source: str, target: str) -> Iterator[tuple[Path, str, str]]:
    """A bare clone of ``source`` in a temporary directory: (path, default branch, root commit).

    Refused (OnboardingError) when it cannot be cloned, has no commits or no Python files. The
    root commit is the smallest of the default branch's roots (one, unless histories merged).
    """
    with tempfile.TemporaryDirectory(prefix="triloop-onboard-") as tmp:
        staging = Path(tmp) / "repo.git"
        try:
            git("clone", "--quiet", "--bare", source, str(staging), timeout=600)
        except GitError as exc:
            raise OnboardingError(f"{target}: cannot clone ({exc})") from exc
        try:
            head = git("symbolic-ref", "--short", "HEAD", cwd=staging)
            files = git("ls-tree", "-r", "--name-only", head, cwd=staging).splitlines()
            roots = git("rev-list", "--max-parents=0", head, cwd=staging).split()
        except GitError as exc:
            raise OnboardingError(f"{target}: repository has no commits") from exc
        if not any(f.endswith(".py") for f in files):
            raise OnboardingError(f"{target}: repository has no Python files on {head}")
        yield staging, head, min(roots)


def materialise_sample(app: App) -> Path:
    """Turn the bundled sample package into a git repository (once) and return its path."""
    dest = app.settings.home / "samples" / "sample"
    if (dest / ".git").exists():
        return dest
    shutil.copytree(SAMPLE_SOURCE, dest, dirs_exist_ok=True)
    env = {"GIT_AUTHOR_DATE": SAMPLE_DATE, "GIT_COMMITTER_DATE": SAMPLE_DATE}
    git("init", "--quiet", "--initial-branch=main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "--quiet", "-m", "Sample inventory package", cwd=dest, env=env)
    return dest
