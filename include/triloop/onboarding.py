"""Onboarding a repository: validate it, mirror it into the forge, record it.

Bad input (not a git repo, an unreachable remote, no Python files) is refused before anything
is created; the refusal itself is written to the ledger.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from triloop.adapters.git import GitError, git, is_git_repo
from triloop.bootstrap import App
from triloop.config import PROJECT_ROOT
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


def onboard(app: App, target: str, *, name: str | None = None, actor: Actor) -> Repo:
    """Onboard ``target`` (a path or git URL); idempotent for the same name and origin."""
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
                return existing
        forge_path = app.settings.forge_dir / f"{repo_id}.git"
        default_branch = _mirror(source, forge_path, target)
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
        )
        session.add(repo)
        record(
            session,
            actor,
            "repo.onboard",
            repo_id=repo_id,
            payload={"target": target, "remote": str(forge_path)},
        )
    return repo


def _mirror(source: str, forge_path: Path, target: str) -> str:
    """Clone ``source`` bare into the forge (cleaning up on refusal); return default branch."""
    with tempfile.TemporaryDirectory(prefix="triloop-onboard-") as tmp:
        staging = Path(tmp) / "repo.git"
        try:
            git("clone", "--quiet", "--bare", source, str(staging), timeout=600)
        except GitError as exc:
            raise OnboardingError(f"{target}: cannot clone ({exc})") from exc
        try:
            head = git("symbolic-ref", "--short", "HEAD", cwd=staging)
            files = git("ls-tree", "-r", "--name-only", head, cwd=staging).splitlines()
        except GitError as exc:
            raise OnboardingError(f"{target}: repository has no commits") from exc
        if not any(f.endswith(".py") for f in files):
            raise OnboardingError(f"{target}: repository has no Python files on {head}")
        if not forge_path.exists():
            forge_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging), forge_path)
    return head


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
