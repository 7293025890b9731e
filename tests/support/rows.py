"""Test data in the factory's database and a host-side stand-in for the sandbox scanner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from triloop.bootstrap import App
from triloop.discovery.service import ingest_scan, prepare_scan
from triloop.domain.contracts import HarnessRequest, RepoRef
from triloop.store.ledger import Actor
from triloop.store.models import Repo, Ticket

RUFF = str(Path(sys.executable).with_name("ruff"))


def add_ticket(app: App, ticket_id: str, *, state: str = "ready", repo_id: str = "r") -> str:
    """One F401 ticket in ``state`` (its repository too, if missing); returns its id."""
    with app.uow() as session:
        if session.get(Repo, repo_id) is None:
            session.add(Repo(id=repo_id, name=repo_id, origin="/nowhere", remote="/nowhere"))
            session.flush()
        session.add(
            Ticket(
                id=ticket_id,
                key=f"k-{ticket_id}",
                repo_id=repo_id,
                tool="ruff",
                rule="F401",
                path="a.py",
                title="F401 in a.py",
                severity="low",
                state=state,
            )
        )
    return ticket_id


def host_scan(app: App, repo: RepoRef, actor: Actor) -> list[str]:
    """Discovery with ruff run on the host in place of the sandbox (same JSON contract)."""
    request = prepare_scan(app, repo, actor)
    out = Path(request.output_dir)
    ruff = subprocess.run(
        [RUFF, "check", "--output-format", "json", "--exit-zero", "--no-cache", "."],
        cwd=request.workspace,
        capture_output=True,
        text=True,
        check=True,
    )
    (out / "ruff.json").write_text(ruff.stdout.replace(request.workspace + "/", "/workspace/"))
    (out / "semgrep.json").write_text(json.dumps({"results": [], "errors": []}))
    tools = {"ruff": {"exit_code": 0}, "semgrep": {"exit_code": 0}}
    (out / "result.json").write_text(json.dumps({"tools": tools}))
    return ingest_scan(app, request, actor)


def git_repo(root: Path, files: dict[str, str]) -> Path:
    """A git repository at ``root/src`` with ``files`` committed on ``main``."""
    src = root / "src"
    for name, body in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(body)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
    ):
        subprocess.run(["git", *args], cwd=src, check=True)
    return src


def autofix_on_host(request: HarnessRequest) -> str:
    """What the autofix harness does, on the host: ruff's fix of the ticket's rule, as a diff.

    The diff is also left where the harness leaves it (``patch.diff`` in the output dir).
    """
    subprocess.run(
        [RUFF, "check", "--fix", "--no-cache", "--select", request.rule, *request.paths],
        cwd=request.workspace,
        capture_output=True,
        check=False,
    )
    diff = subprocess.run(
        ["git", "diff"], cwd=request.workspace, capture_output=True, text=True, check=True
    ).stdout
    Path(request.output_dir, "patch.diff").write_text(diff)
    return diff
