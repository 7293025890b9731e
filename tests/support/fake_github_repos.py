"""Git data, pull requests and commit statuses for :class:`FakeGitHub`, backed by a bare repo.

A fake REST server cannot receive a ``git push``; the forge pushes to the repository's clone URL
instead, which the tests point at a local bare repository. :func:`attach_git` ties a fake
repository to that bare repository: branch heads, commits and merges are read from and made in
it with git, so what the REST calls see is always what was pushed. Pull requests share the
issue number space (a pull request is also an issue, with ``pull_request`` set), so the issue
comment routes of ``tests.support.fake_github_issues`` serve pull request comments too.

Like GitHub: a merge with a ``sha`` other than the head is 409 ``Head branch was modified``, a
merged, closed or conflicting pull request is 405 ``Pull Request is not mergeable``, a second open
pull request for the same head is 422, an unknown commit is 422 ``No commit found for SHA``.
``PATCH`` of a pull request closes or reopens it (422 for reopening a merged one, or one whose
branch is gone) and edits its title and body; closing a closed one changes nothing.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.fake_github import ApiError, Request, Response, paginate, validation_failed
from tests.support.fake_github_issues import USER, FakeRepo, _now, add_repo

if TYPE_CHECKING:
    from tests.support.fake_github import FakeGitHub

STATES = ("error", "failure", "pending", "success")


@dataclass
class GitData:
    bare: Path
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["git", "-c", "user.name=GitHub", "-c", "user.email=noreply@github.com", *args]
        return subprocess.run(argv, cwd=self.bare, capture_output=True, text=True, check=check)

    def head(self, branch: str) -> str | None:
        out = self.git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
        return out.stdout.strip() or None

    def has_commit(self, sha: str) -> bool:
        return self.git("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0


def attach_git(fake: FakeGitHub, full_name: str, bare: Path) -> FakeRepo:
    """Make ``full_name`` a repository whose git data lives in the bare repository ``bare``."""
    repo = add_repo(fake, full_name)
    fake.state.setdefault("git", {})[full_name] = GitData(bare)
    if not fake.state.get("git_routes"):
        fake.state["git_routes"] = True
        _register(fake)
    return repo


def _register(fake: FakeGitHub) -> None:
    def git_of(req: Request) -> tuple[FakeRepo, GitData]:
        name = f"{req.args['owner']}/{req.args['repo']}"
        data = fake.state["git"].get(name)
        if data is None:
            raise ApiError(404, "Not Found")
        return fake.state["repos"][name], data

    def commit_of(req: Request) -> tuple[FakeRepo, GitData, str]:
        repo, data = git_of(req)
        sha = req.args["sha"]
        if not data.has_commit(sha):
            raise ApiError(422, f"No commit found for SHA: {sha}")
        return repo, data, sha

    def pull_of(req: Request) -> tuple[FakeRepo, GitData, dict[str, Any]]:
        repo, data = git_of(req)
        number = req.args["number"]
        pr = data.pulls.get(int(number)) if number.isdigit() else None
        if pr is None:
            raise ApiError(404, "Not Found")
        return repo, data, fresh(repo, data, pr)

    def fresh(repo: FakeRepo, data: GitData, pr: dict[str, Any]) -> dict[str, Any]:
        """An open pull request follows its branches, as GitHub's does."""
        if pr["state"] == "open":
            pr["head"]["sha"] = data.head(pr["head"]["ref"]) or pr["head"]["sha"]
            pr["base"]["sha"] = data.head(pr["base"]["ref"]) or pr["base"]["sha"]
        return pr

    def branch_doc(req: Request, name: str) -> Response:
        _, data = git_of(req)
        sha = data.head(name)
        if sha is None:
            raise ApiError(404, "Branch not found")
        return Response(200, {"name": name, "commit": {"sha": sha}, "protected": False})

    @fake.route("GET", "/repos/{owner}/{repo}/branches/(?P<branch>.+)")
    def get_branch(req: Request) -> Response:
        return branch_doc(req, req.args["branch"])

    @fake.route("GET", "/repos/{owner}/{repo}/git/ref/heads/(?P<branch>.+)")
    def get_ref(req: Request) -> Response:
        _, data = git_of(req)
        sha = data.head(req.args["branch"])
        if sha is None:
            raise ApiError(404, "Not Found")
        ref = f"refs/heads/{req.args['branch']}"
        doc = {"ref": ref, "url": f"{req.base_url}{req.path}"}
        return Response(200, {**doc, "object": {"sha": sha, "type": "commit"}})

    @fake.route("GET", "/repos/{owner}/{repo}/pulls")
    def list_pulls(req: Request) -> Response:
        repo, data = git_of(req)
        state = req.params.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise validation_failed("PullRequest", "state")
        head = req.params.get("head")
        found = [
            fresh(repo, data, pr)
            for pr in data.pulls.values()
            if state in ("all", pr["state"]) and head in (None, pr["head"]["label"])
        ]
        return paginate(req, found)

    @fake.route("POST", "/repos/{owner}/{repo}/pulls")
    def create_pull(req: Request) -> Response:
        repo, data = git_of(req)
        body = req.json or {}
        for name in ("title", "head", "base"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise validation_failed("PullRequest", name, "missing_field")
        head_ref = body["head"].split(":", 1)[-1]
        head, base = data.head(head_ref), data.head(body["base"])
        if head is None or base is None:
            raise validation_failed("PullRequest", "head" if head is None else "base")
        label = f"{repo.owner}:{head_ref}"
        if any(p["state"] == "open" and p["head"]["label"] == label for p in data.pulls.values()):
            raise ApiError(422, f"A pull request already exists for {label}.")
        number = len(repo.issues) + 1
        url = f"{req.base_url}/repos/{repo.full_name}"
        issue_url = f"{url}/issues/{number}"
        pr = {
            "id": 50_000 + number,
            "number": number,
            "state": "open",
            "title": body["title"],
            "body": body.get("body"),
            "user": USER,
            "head": {"ref": head_ref, "sha": head, "label": label},
            "base": {"ref": body["base"], "sha": base, "label": f"{repo.owner}:{body['base']}"},
            "merged": False,
            "mergeable": True,
            "merge_commit_sha": None,
            "merged_at": None,
            "created_at": _now(),
            "url": f"{url}/pulls/{number}",
            "issue_url": issue_url,
            "html_url": f"{req.base_url}/{repo.full_name}/pull/{number}",
        }
        data.pulls[number] = pr
        repo.issues[number] = {
            **{k: pr[k] for k in ("number", "title", "body", "state", "user", "created_at")},
            "id": 60_000 + number,
            "labels": [],
            "comments": 0,
            "state_reason": None,
            "updated_at": pr["created_at"],
            "closed_at": None,
            "url": issue_url,
            "pull_request": {"url": pr["url"]},
        }
        return Response(201, pr)

    @fake.route("GET", "/repos/{owner}/{repo}/pulls/{number}")
    def get_pull(req: Request) -> Response:
        return Response(200, pull_of(req)[2])

    @fake.route("PATCH", "/repos/{owner}/{repo}/pulls/{number}")
    def update_pull(req: Request) -> Response:
        repo, data, pr = pull_of(req)
        body = req.json or {}
        state = body.get("state", pr["state"])
        if state not in ("open", "closed") or (state == "open" and pr["merged"]):
            raise validation_failed("PullRequest", "state")
        if state == "open" and data.head(pr["head"]["ref"]) is None:
            raise validation_failed("PullRequest", "state")  # its branch is gone: no reopening
        issue = repo.issues[pr["number"]]
        if state != pr["state"]:
            closed_at = _now() if state == "closed" else None
            pr.update(state=state, closed_at=closed_at)
            issue.update(state=state, closed_at=closed_at, updated_at=_now())
        for name in ("title", "body"):
            if isinstance(body.get(name), str):
                pr[name] = issue[name] = body[name]
        return Response(200, fresh(repo, data, pr))

    @fake.route("PUT", "/repos/{owner}/{repo}/pulls/{number}/merge")
    def merge_pull(req: Request) -> Response:
        repo, data, pr = pull_of(req)
        body = req.json or {}
        if pr["state"] != "open":
            raise ApiError(405, "Pull Request is not mergeable")
        head, base = pr["head"]["sha"], pr["base"]["sha"]
        if body.get("sha") not in (None, head):
            raise ApiError(409, "Head branch was modified. Review and try the merge again.")
        tree = data.git("merge-tree", "--write-tree", base, head, check=False)
        if tree.returncode != 0:
            raise ApiError(405, "Pull Request is not mergeable")
        title = body.get("commit_title") or f"Merge pull request #{pr['number']}"
        message = f"{title}\n\n{body.get('commit_message') or pr['title']}"
        commit = data.git(
            "commit-tree", tree.stdout.split()[0], "-p", base, "-p", head, "-m", message
        ).stdout.strip()
        data.git("update-ref", f"refs/heads/{pr['base']['ref']}", commit, base)
        pr.update(state="closed", merged=True, merge_commit_sha=commit, merged_at=_now())
        repo.issues[pr["number"]].update(state="closed", closed_at=_now())
        return Response(200, {"sha": commit, "merged": True, "message": "Pull Request merged"})

    @fake.route("GET", "/repos/{owner}/{repo}/commits/{sha}")
    def get_commit(req: Request) -> Response:
        sha = commit_of(req)[2]
        return Response(200, {"sha": sha, "url": f"{req.base_url}{req.path}"})

    @fake.route("POST", "/repos/{owner}/{repo}/statuses/{sha}")
    def create_status(req: Request) -> Response:
        repo, data, sha = commit_of(req)
        body = req.json or {}
        if body.get("state") not in STATES:
            raise validation_failed("Status", "state")
        status = {
            "id": len(data.statuses.get(sha, [])) + 1,
            "state": body["state"],
            "context": body.get("context") or "default",
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "created_at": _now(),
            "url": f"{req.base_url}/repos/{repo.full_name}/statuses/{sha}",
        }
        data.statuses.setdefault(sha, []).insert(0, status)  # newest first, as GitHub lists
        return Response(201, status)

    @fake.route("GET", "/repos/{owner}/{repo}/commits/{sha}/statuses")
    def list_statuses(req: Request) -> Response:
        _, data, sha = commit_of(req)
        return paginate(req, data.statuses.get(sha, []))

    @fake.route("GET", "/repos/{owner}/{repo}/commits/{sha}/status")
    def combined_status(req: Request) -> Response:
        repo, data, sha = commit_of(req)
        latest: dict[str, dict[str, Any]] = {}
        for status in data.statuses.get(sha, []):
            latest.setdefault(status["context"], status)
        states = {s["state"] for s in latest.values()}
        overall = next((s for s in ("failure", "pending") if s in states), "success")
        if "error" in states:
            overall = "failure"
        doc = {"state": overall if latest else "pending", "sha": sha, "total_count": len(latest)}
        url = f"{req.base_url}/repos/{repo.full_name}"
        return Response(200, {**doc, "statuses": list(latest.values()), "repository": {"url": url}})
