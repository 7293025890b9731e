"""Which ruff configuration a scan uses: the repository's own anywhere in it, else the policy's."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from triloop.domain.code_scan_policy import DEFAULT_LINT_SELECT, LintRules
from triloop.lint_config import configures_ruff, default_config_text, ruff_config, write_default


def test_a_configuration_anywhere_in_the_checkout_is_the_repositorys(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    assert not configures_ruff(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "a"\n')
    assert not configures_ruff(tmp_path) and ruff_config(tmp_path) is None
    (tmp_path / "pkg/ruff.toml").write_text("line-length = 99\n")
    assert configures_ruff(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 99\n")
    assert ruff_config(tmp_path) == tmp_path / "pyproject.toml"
    (tmp_path / ".ruff.toml").write_text("")
    assert ruff_config(tmp_path) == tmp_path / ".ruff.toml", "ruff's own precedence"


def test_a_configuration_in_a_virtualenv_or_git_dir_does_not_count(tmp_path: Path) -> None:
    for skipped in (".venv/lib", ".git/x", "node_modules/y"):
        (tmp_path / skipped).mkdir(parents=True)
        (tmp_path / skipped / "ruff.toml").write_text("")
    assert not configures_ruff(tmp_path)


def test_the_default_rule_set_is_written_for_the_sandbox(tmp_path: Path) -> None:
    path = write_default(tmp_path, ["F", "UP"])
    assert path == tmp_path / "analysis/ruff.toml"
    assert path.read_text() == default_config_text(["F", "UP"])
    assert path.read_text().endswith('[lint]\nselect = ["F", "UP"]\n')
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_the_policy_takes_rule_codes_only() -> None:
    assert LintRules().default_select == DEFAULT_LINT_SELECT
    for bad in ([], ["F401;rm"], ['F"]'], ["4E"]):
        with pytest.raises(ValidationError):
            LintRules(default_select=bad)
