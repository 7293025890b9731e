"""A repository on a fake GitHub, as a repository's ``github`` forge sees it, all on loopback.

:func:`github_repo` copies an onboarded repository into a bare repository of its own (GitHub's
copy: the onboarded mirror never sees what Triloop pushes or merges), serves it over git smart
HTTP behind a token check (:class:`~tests.support.git_http.GitHttpServer`) and ties the fake
GitHub REST server to it (:func:`~tests.support.fake_github_repos.attach_git`), then sets the
Airflow connection the forge's hook reads. :attr:`GitHubRepo.forge` is the policy entry.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_repos import GitData, attach_git
from tests.support.git_http import GitHttpServer

TOKEN = "ghs-forge-wiring-token"


def git(*args: str, cwd: Path) -> str:
    argv = ["git", "-c", "user.name=o", "-c", "user.email=o@o", *args]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@dataclass
class GitHubRepo:
    fake: FakeGitHub
    server: GitHttpServer
    bare: Path
    full_name: str
    conn_id: str

    @property
    def clone_url(self) -> str:
        return self.server.url(self.bare.name)

    @property
    def forge(self) -> dict[str, str]:
        """The ``repos.<id>.forge`` policy entry for this repository."""
        return {
            "kind": "github",
            "conn_id": self.conn_id,
            "repo": self.full_name,
            "clone_url": self.clone_url,
        }

    @property
    def data(self) -> GitData:
        data: GitData = self.fake.state["git"][self.full_name]
        return data

    @property
    def pulls(self) -> dict[int, dict[str, Any]]:
        return self.data.pulls

    def comments(self, number: int) -> list[str]:
        repo = self.fake.state["repos"][self.full_name]
        return [c["body"] for c in repo.comments.get(number, [])]

    def statuses(self, sha: str) -> list[dict[str, Any]]:
        return list(self.data.statuses.get(sha, []))

    def merges(self) -> int:
        """How many merge requests GitHub received."""
        return self.fake.count("PUT", r"/repos/[^/]+/[^/]+/pulls/\d+/merge")

    def land_on_main(self, tmp: Path, name: str) -> str:
        """Someone else pushes a commit to main on GitHub (over HTTP, with the token)."""
        clone = tmp / f"other-{name}"
        url = self.clone_url.replace("http://", f"http://x-access-token:{TOKEN}@")
        git("clone", "-q", "--branch", "main", url, str(clone), cwd=tmp)
        (clone / f"{name}.md").write_text(f"{name}\n")
        git("add", "-A", cwd=clone)
        git("commit", "-qm", f"{name} lands first", cwd=clone)
        git("push", "-q", "origin", "HEAD:main", cwd=clone)
        return git("rev-parse", "HEAD", cwd=clone)


@contextmanager
def github_repo(
    mirror: Path,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    full_name: str = "acme/sample",
    conn_id: str = "triloop_github_wiring",
) -> Iterator[GitHubRepo]:
    """GitHub's copy of the bare repository ``mirror``, served on loopback (see module doc)."""
    root.mkdir(parents=True, exist_ok=True)
    bare = root / f"{full_name.split('/')[1]}.git"
    git("clone", "-q", "--bare", str(mirror), str(bare), cwd=root)
    with FakeGitHub(tokens=(TOKEN,)) as fake, GitHttpServer(root, TOKEN) as server:
        attach_git(fake, full_name, bare)
        conn = {"conn_type": "github", "host": fake.base_url, "password": TOKEN}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        yield GitHubRepo(fake, server, bare, full_name, conn_id)
