"""Repositories, issues, comments, labels and issue search for :class:`FakeGitHub`.

Only what PyGithub calls for issues, answered with the fields it reads. State lives in
``fake.state["repos"]``: full name to :class:`FakeRepo`; :func:`add_repo` creates one.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.support.fake_github import ApiError, Request, Response, paginate, validation_failed

if TYPE_CHECKING:
    from tests.support.fake_github import FakeGitHub

USER = {"login": "triloop-bot", "id": 1, "type": "Bot"}
STATE_REASONS = ("completed", "not_planned", "reopened", "duplicate")


@dataclass
class FakeRepo:
    owner: str
    name: str
    id: int
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def add_repo(fake: FakeGitHub, full_name: str) -> FakeRepo:
    owner, _, name = full_name.partition("/")
    repos: dict[str, FakeRepo] = fake.state.setdefault("repos", {})
    with fake.lock:
        return repos.setdefault(full_name, FakeRepo(owner, name, id=len(repos) + 1))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def register(fake: FakeGitHub) -> None:
    repos: dict[str, FakeRepo] = fake.state.setdefault("repos", {})
    counter = {"id": 1000}

    def next_id() -> int:
        counter["id"] += 1
        return counter["id"]

    def repo_of(req: Request) -> FakeRepo:
        repo = repos.get(f"{req.args['owner']}/{req.args['repo']}")
        if repo is None:
            raise ApiError(404, "Not Found")
        return repo

    def issue_of(req: Request) -> tuple[FakeRepo, dict[str, Any]]:
        repo = repo_of(req)
        issue = repo.issues.get(int(req.args["number"])) if req.args["number"].isdigit() else None
        if issue is None:
            raise ApiError(404, "Not Found")
        return repo, issue

    def label_doc(
        repo: FakeRepo, name: str, color: str = "ededed", desc: str = ""
    ) -> dict[str, Any]:
        url = f"{base()}/repos/{repo.full_name}/labels/{name}"
        return {"id": next_id(), "name": name, "color": color, "description": desc, "url": url}

    def base() -> str:
        return fake.base_url

    def labels_for(repo: FakeRepo, names: Any) -> list[dict[str, Any]]:
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise validation_failed("Issue", "labels")
        return [repo.labels.setdefault(n, label_doc(repo, n)) for n in names]

    @fake.route("GET", "/user")
    def user(req: Request) -> Response:
        return Response(200, USER)

    @fake.route("GET", "/repos/{owner}/{repo}")
    def get_repo(req: Request) -> Response:
        repo = repo_of(req)
        url = f"{req.base_url}/repos/{repo.full_name}"
        doc = {"id": repo.id, "name": repo.name, "full_name": repo.full_name, "url": url}
        return Response(200, {**doc, "owner": {"login": repo.owner}, "has_issues": True})

    @fake.route("GET", "/repos/{owner}/{repo}/issues")
    def list_issues(req: Request) -> Response:
        repo = repo_of(req)
        state = req.params.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise validation_failed("Issue", "state")
        wanted = {n for n in req.params.get("labels", "").split(",") if n}
        since = req.params.get("since", "")
        found = [
            issue
            for issue in repo.issues.values()
            if state in ("all", issue["state"])
            and wanted <= {label["name"] for label in issue["labels"]}
            and issue["updated_at"] >= since.replace("+00:00", "Z")
        ]
        found.sort(key=lambda i: i["number"], reverse=req.params.get("direction", "desc") == "desc")
        return paginate(req, found)

    @fake.route("POST", "/repos/{owner}/{repo}/issues")
    def create_issue(req: Request) -> Response:
        repo, body = repo_of(req), req.json or {}
        if not isinstance(body.get("title"), str) or not body["title"].strip():
            raise validation_failed("Issue", "title", "missing_field")
        number = len(repo.issues) + 1
        now = _now()
        issue = {
            "id": next_id(),
            "number": number,
            "title": body["title"],
            "body": body.get("body"),
            "state": "open",
            "state_reason": None,
            "labels": labels_for(repo, body.get("labels", [])),
            "user": USER,
            "comments": 0,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "url": f"{req.base_url}/repos/{repo.full_name}/issues/{number}",
            "html_url": f"{req.base_url}/{repo.full_name}/issues/{number}",
            "repository_url": f"{req.base_url}/repos/{repo.full_name}",
        }
        repo.issues[number] = issue
        return Response(201, issue)

    @fake.route("GET", "/repos/{owner}/{repo}/issues/{number}")
    def get_issue(req: Request) -> Response:
        return Response(200, issue_of(req)[1])

    @fake.route("PATCH", "/repos/{owner}/{repo}/issues/{number}")
    def edit_issue(req: Request) -> Response:
        repo, issue = issue_of(req)
        body = req.json or {}
        if body.get("state", "open") not in ("open", "closed"):
            raise validation_failed("Issue", "state")
        if body.get("state_reason") not in (None, *STATE_REASONS):
            raise validation_failed("Issue", "state_reason")
        if "title" in body and not str(body["title"] or "").strip():
            raise validation_failed("Issue", "title", "missing_field")
        changes = {k: body[k] for k in ("title", "body", "state") if k in body}
        if "labels" in body:
            changes["labels"] = labels_for(repo, body["labels"])
        if body.get("state") == "closed" and issue["state"] != "closed":
            changes["closed_at"] = _now()
            changes["state_reason"] = body.get("state_reason") or "completed"
        elif body.get("state") == "open" and issue["state"] == "closed":
            changes.update(closed_at=None, state_reason="reopened")
        issue.update(changes, updated_at=_now())
        return Response(200, issue)

    @fake.route("GET", "/repos/{owner}/{repo}/issues/{number}/comments")
    def list_comments(req: Request) -> Response:
        repo, issue = issue_of(req)
        return paginate(req, repo.comments.get(issue["number"], []))

    @fake.route("POST", "/repos/{owner}/{repo}/issues/{number}/comments")
    def create_comment(req: Request) -> Response:
        repo, issue = issue_of(req)
        text = (req.json or {}).get("body")
        if not isinstance(text, str) or not text:
            raise validation_failed("IssueComment", "body", "missing_field")
        cid = next_id()
        comment = {
            "id": cid,
            "body": text,
            "user": USER,
            "created_at": _now(),
            "updated_at": _now(),
            "url": f"{req.base_url}/repos/{repo.full_name}/issues/comments/{cid}",
            "issue_url": issue["url"],
        }
        repo.comments.setdefault(issue["number"], []).append(comment)
        issue.update(comments=issue["comments"] + 1, updated_at=_now())
        return Response(201, comment)

    @fake.route("GET", "/repos/{owner}/{repo}/labels")
    def list_labels(req: Request) -> Response:
        return paginate(req, list(repo_of(req).labels.values()))

    @fake.route("GET", "/repos/{owner}/{repo}/labels/{name}")
    def get_label(req: Request) -> Response:
        label = repo_of(req).labels.get(req.args["name"])
        if label is None:
            raise ApiError(404, "Not Found")
        return Response(200, label)

    @fake.route("POST", "/repos/{owner}/{repo}/labels")
    def create_label(req: Request) -> Response:
        repo, body = repo_of(req), req.json or {}
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise validation_failed("Label", "name", "missing_field")
        if name in repo.labels:
            raise validation_failed("Label", "name", "already_exists")
        repo.labels[name] = label_doc(
            repo, name, body.get("color", "ededed"), body.get("description", "")
        )
        return Response(201, repo.labels[name])

    @fake.route("GET", "/search/issues")
    def search_issues(req: Request) -> Response:
        terms = shlex.split(req.params.get("q", ""))
        filters = [t.split(":", 1) for t in terms if ":" in t and not t.startswith("in:")]
        words = [t for t in terms if ":" not in t]
        items = [
            issue
            for repo in repos.values()
            for issue in repo.issues.values()
            if all(_matches(repo, issue, key, value) for key, value in filters)
            and all(w in f"{issue['title']}\n{issue['body'] or ''}" for w in words)
        ]
        page = paginate(req, items)
        page.body = {"total_count": len(items), "incomplete_results": False, "items": page.body}
        return page


def _matches(repo: FakeRepo, issue: dict[str, Any], key: str, value: str) -> bool:
    if key == "repo":
        return value == repo.full_name
    if key == "label":
        return value in {label["name"] for label in issue["labels"]}
    if key in ("is", "state") and value in ("open", "closed"):
        return bool(issue["state"] == value)
    if key == "is" and value in ("issue", "pr", "pull-request"):
        return value == "issue"
    raise validation_failed("Search", "q")
