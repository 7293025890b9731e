"""Pushing commits to a GitHub repository over HTTPS with the connection's token.

GitHub receives git objects only through ``git push``; the REST API cannot. The token (a
personal access token, or a GitHub App installation token, which PyGithub refreshes) reaches
git as an ``Authorization`` header set through ``GIT_CONFIG_*`` variables in the environment
of that one git process: never in argv, never written to disk, never logged. A clone URL that
is not HTTP(S) (a local bare repository in tests) gets no header. Pushes never force: a branch
that moved elsewhere is a permanent :class:`GitHubForgeError`, as is a refused credential; anything
else (the network) is transient.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from pathlib import Path

from triloop.adapters.git import GitError, git
from triloop.adapters.github_common import GitHubForgeError

log = logging.getLogger(__name__)
REFUSED = (
    "[rejected]",
    "non-fast-forward",
    "fetch first",
    "authentication failed",
    "could not read username",
    "permission",
    "403",
    "401",
    "protected branch",
)


def auth_env(url: str, token: str | None) -> dict[str, str]:
    """Environment variables that make git send ``token`` to ``url`` (HTTP(S) only)."""
    if token is None or not url.startswith(("https://", "http://")):
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def push(
    clone_url: str, local_clone: Path, sha: str, branch: str, token: Callable[[], str | None]
) -> None:
    """Push ``sha`` to ``refs/heads/{branch}`` of ``clone_url``, without force."""
    log.info("pushing %s to %s of %s", sha[:12], branch, clone_url)
    try:
        git(
            "push",
            "--quiet",
            clone_url,
            f"{sha}:refs/heads/{branch}",
            cwd=local_clone,
            env=auth_env(clone_url, token()),
        )
    except GitError as exc:
        refused = any(word in exc.output.lower() for word in REFUSED)
        raise GitHubForgeError(
            f"push of {branch} to {clone_url} failed: {exc}", transient=not refused
        ) from exc
