"""Running git on the host, with errors that carry the command, exit code and output."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

BOT_NAME = "Triloop"
BOT_EMAIL = "triloop@localhost"


class GitError(RuntimeError):
    """A git command failed."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        self.argv, self.returncode, self.output = list(argv), returncode, output
        tail = output.strip().splitlines()[-5:]
        super().__init__(f"git {' '.join(argv)} exited {returncode}: {' | '.join(tail)}")


def git(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> str:
    full_env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": BOT_NAME,
        "GIT_AUTHOR_EMAIL": BOT_EMAIL,
        "GIT_COMMITTER_NAME": BOT_NAME,
        "GIT_COMMITTER_EMAIL": BOT_EMAIL,
        **(env or {}),
    }
    argv = ["-c", "safe.directory=*", "-c", "init.defaultBranch=main", *args]
    log.debug("git %s (cwd=%s)", " ".join(args), cwd)
    proc = subprocess.run(
        ["git", *argv],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(list(args), proc.returncode, proc.stdout + proc.stderr)
    return proc.stdout.strip()


def is_git_repo(path: Path) -> bool:
    try:
        git("rev-parse", "--git-dir", cwd=path)
    except (GitError, FileNotFoundError, NotADirectoryError):
        return False
    return True


def fresh_checkout(remote: str, ref: str, dest: Path, env: Mapping[str, str] | None = None) -> str:
    """Make ``dest`` a clean checkout of ``ref`` from ``remote``; return the commit sha.

    ``dest`` records no remote URL: each call fetches ``remote`` by its URL with ``env`` (which
    may carry credentials for that one git process), so nothing in the checkout holds them.
    Branches land under ``refs/remotes/origin/``; ``--prune`` drops the ones the remote deleted,
    so a re-used checkout never resolves a branch that is gone (a deleted PR branch).
    """
    if not (dest / ".git").exists():
        dest.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", str(dest))
    refspec = "+refs/heads/*:refs/remotes/origin/*"
    git("fetch", "--quiet", "--force", "--prune", remote, refspec, cwd=dest, env=env)
    sha = git("rev-parse", f"origin/{ref}^{{commit}}", cwd=dest)
    git("checkout", "--quiet", "--force", "--detach", sha, cwd=dest)
    git("clean", "-fdxq", cwd=dest)
    return sha
