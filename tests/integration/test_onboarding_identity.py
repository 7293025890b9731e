"""One repository, one identity: onboarding recognises what it already has, under any name.

Another clone at another path (same root commit) or the same origin under another name gives
back the repository already there, with a ledger row saying how it was recognised, and creates
nothing. ``--separate`` onboards a fork as a repository of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from triloop.adapters.git import git
from triloop.bootstrap import App
from triloop.cli import main
from triloop.onboarding import materialise_sample, onboard, onboard_repo
from triloop.store.ledger import CLI
from triloop.store.models import LedgerEntry, Repo


def _repos(app: App) -> int:
    with app.uow() as session:
        return int(session.scalar(select(func.count()).select_from(Repo)) or 0)


def test_another_clone_under_another_name_is_the_same_repository(app: App, tmp_path: Path) -> None:
    sample = materialise_sample(app)
    first = onboard_repo(app, str(sample), name="sample", actor=CLI)
    assert first.existing == "" and first.repo.root_commit
    clone = tmp_path / "elsewhere" / "inventory-copy"
    git("clone", "--quiet", str(sample), str(clone), cwd=tmp_path)
    git("commit", "--quiet", "--allow-empty", "-m", "a local commit", cwd=clone)
    again = onboard_repo(app, str(clone), name="inventory", actor=CLI)
    assert again.repo.id == "sample"
    assert again.existing == f"same root commit {first.repo.root_commit[:12]}"
    assert _repos(app) == 1
    assert not (app.settings.forge_dir / "inventory.git").exists()
    by_origin = onboard_repo(app, str(sample), name="sample-2", actor=CLI)
    assert (by_origin.repo.id, by_origin.existing) == ("sample", f"same origin {sample}")
    with app.uow() as session:
        rows = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == "repo.onboard")
        ).all()
    assert [r.outcome for r in rows] == ["ok", "existing", "existing"]
    assert rows[1].payload["recognised_by"].startswith("same root commit")


def test_a_fork_can_be_onboarded_as_a_repository_of_its_own(app: App, tmp_path: Path) -> None:
    sample = materialise_sample(app)
    onboard(app, str(sample), name="sample", actor=CLI)
    fork = tmp_path / "fork"
    git("clone", "--quiet", str(sample), str(fork), cwd=tmp_path)
    repo = onboard(app, str(fork), name="fork", actor=CLI, separate=True)
    assert repo.id == "fork" and _repos(app) == 2


def test_the_cli_says_it_is_there_and_which_autonomy_level_applies(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["onboard", "--sample"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("onboarded sample: ")
    assert "autonomy level 2 (auto-merge low risk), from policy repos.sample.autonomy_level" in out
    assert "repos: sample: autonomy_level in the policy file" in out
    clone = tmp_path / "again"
    git("clone", "--quiet", str(materialise_sample(app)), str(clone), cwd=tmp_path)
    assert main(["onboard", str(clone)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sample is already onboarded (same root commit ")
    assert "--separate" in out
    assert main(["onboard", str(clone), "--name", "mine", "--separate"]) == 0
    assert "autonomy level 1 (a human approves every PR), from policy default_autonomy_level" in (
        capsys.readouterr().out
    )
