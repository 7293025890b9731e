"""Patch rules: limits, binaries, symlinks, escaping paths; protected paths go to a human."""

from __future__ import annotations

from pathlib import Path

import pytest
from triloop.domain.policy import PatchRules, load_policy, protected_match
from triloop.execution.patch import PatchRejected, check_patch_text, validate_patch
from triloop.governance.risk import FileChange, classify, may_auto_merge

from tests.support.rows import git_repo

ROOT = Path(__file__).resolve().parents[2]
SRC = "/out/patch.diff"
ALLOWED = ["pkg/mod.py", "pkg/b.py", "pkg/c.py", "link", "tool.sh"]


def _edit(path: str = "pkg/mod.py", old: str = "x = 1", new: str = "x = 2") -> str:
    return (
        f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n"
        f"--- a/{path}\n+++ b/{path}\n@@ -1,2 +1,2 @@\n import os\n-{old}\n+{new}\n"
    )


def _new(path: str, mode: str, body: str = "+target\n") -> str:
    return (
        f"diff --git a/{path} b/{path}\nnew file mode {mode}\nindex 0000000..1111111\n"
        f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n{body}"
    )


BINARY = (
    "diff --git a/pkg/mod.py b/pkg/mod.py\nindex 1111111..2222222 100644\n"
    "GIT binary patch\nliteral 4\nLcmZ?l00001\n\nliteral 0\nHcmV?d00001\n\n"
)
RENAME = "diff --git a/pkg/mod.py b/pkg/mod.py\nsimilarity index 100%\n"


@pytest.mark.parametrize(
    ("patch", "rules", "message"),
    [
        ("garbage\n", PatchRules(), "no file changes"),
        ("diff --git a/x\n", PatchRules(), "unreadable diff header"),
        ("--- a/pkg/mod.py\n+++ b/pkg/mod.py\n", PatchRules(), "before any 'diff --git'"),
        (_edit() + "@@ nonsense\n", PatchRules(), "unreadable hunk header"),
        (_edit()[:-9], PatchRules(), "ends early"),
        (_edit() + "@@ -1 +1 @@\n*x\n", PatchRules(), "unreadable line"),
        (_edit() + _edit("pkg/b.py") + _edit("pkg/c.py"), PatchRules(max_files=2), "3 files"),
        (_edit(), PatchRules(max_lines=1), "changes 2 lines, over the limit of 1"),
        (BINARY, PatchRules(), "binary change to 'pkg/mod.py'"),
        (
            "diff --git a/pkg/mod.py b/pkg/mod.py\nindex 1..2 100644\n"
            "Binary files a/pkg/mod.py and b/pkg/mod.py differ\n",
            PatchRules(),
            "binary files are not accepted",
        ),
        (_new("link", "120000"), PatchRules(), "'link' is a symlink"),
        (
            "diff --git a/link b/link\nindex 1111111..2222222 120000\n--- a/link\n+++ b/link\n"
            "@@ -1 +1 @@\n-a\n+b\n",
            PatchRules(),
            "symlinks are not accepted",
        ),
        (_new("pkg/c.py", "160000", "+Subproject commit abc\n"), PatchRules(), "submodule"),
        (_new("tool.sh", "100755"), PatchRules(), "makes 'tool.sh' executable"),
        (
            "diff --git a/tool.sh b/tool.sh\nold mode 100644\nnew mode 100755\n",
            PatchRules(),
            "mode 100755",
        ),
        (_edit("/etc/passwd"), PatchRules(), "'/etc/passwd' escapes the repository"),
        (_edit("pkg/../../x"), PatchRules(), "escapes the repository"),
        (_edit(".git/hooks/pre-commit"), PatchRules(), "escapes the repository"),
        (RENAME + "rename from pkg/mod.py\nrename to ../evil.py\n", PatchRules(), "'../evil.py'"),
        (RENAME + "copy from pkg/mod.py\ncopy to /tmp/evil.py\n", PatchRules(), "'/tmp/evil"),
        (RENAME + "rename from pkg/mod.py\nrename to pkg/z.py\n", PatchRules(), "'pkg/z.py', out"),
        (_edit("other.py"), PatchRules(), "outside the ticket's files"),
    ],
)
def test_patch_text_rules(patch: str, rules: PatchRules, message: str) -> None:
    with pytest.raises(PatchRejected, match=f"^{SRC}: .*{message}"):
        check_patch_text(patch, SRC, ALLOWED, rules)


def test_normal_patch_passes_and_counts_its_files() -> None:
    patch = "From abc\nSubject: fix\n\n" + _edit() + _edit("pkg/b.py") + "-- \n2.43.0\n"
    assert check_patch_text(patch, SRC, ALLOWED, PatchRules(max_files=2, max_lines=4)) == [
        "pkg/mod.py",
        "pkg/b.py",
    ]


@pytest.mark.parametrize(
    "patch",
    [
        _edit("tool.sh").replace("100644", "100755"),  # already executable, mode kept
        "diff --git a/tool.sh b/tool.sh\nold mode 100755\nnew mode 100644\n",  # chmod -x
    ],
)
def test_executable_mode_kept_or_dropped_passes(patch: str) -> None:
    assert check_patch_text(patch, SRC, ALLOWED, PatchRules()) == ["tool.sh"]


def test_executable_file_passes_when_the_policy_allows_it() -> None:
    rules = PatchRules(allow_executable=True)
    assert check_patch_text(_new("tool.sh", "100755"), SRC, ALLOWED, rules) == ["tool.sh"]


def _repo(tmp_path: Path) -> Path:
    return git_repo(tmp_path, {"pkg/mod.py": "import os\nx = 1\n"})


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (_edit(old="y = 1"), "does not apply to the base commit"),
        (_edit(), None),
        (_edit("tool.sh"), "outside the ticket's files"),
    ],
)
def test_validate_patch_checks_rules_then_applies(
    tmp_path: Path, patch: str, message: str | None
) -> None:
    src, path = _repo(tmp_path), tmp_path / "patch.diff"
    path.write_text(patch)
    if message is None:
        assert validate_patch(path, src, ["pkg/mod.py"], PatchRules()) == ["pkg/mod.py"]
        return
    with pytest.raises(PatchRejected, match=f"{path}: .*{message}"):
        validate_patch(path, src, ["pkg/mod.py"], PatchRules())


@pytest.mark.parametrize(
    ("path", "glob"),
    [
        (".github/workflows/ci.yml", ".github/workflows/**"),
        (".gitlab-ci.yml", ".gitlab-ci.yml"),
        (".circleci/config.yml", ".circleci/**"),
        ("Jenkinsfile", "**/Jenkinsfile"),
        ("deploy/Dockerfile.prod", "**/Dockerfile*"),
        ("triloop.yaml", "**/triloop*.yaml"),
        ("include/policy/default.yaml", "include/policy/**"),
        ("src/app.py", None),
        ("docs/Jenkinsfile.md", None),
        (".github/ISSUE_TEMPLATE.md", None),
    ],
)
def test_default_protected_globs(path: str, glob: str | None) -> None:
    rules = load_policy(ROOT / "include/policy/default.yaml").patch
    assert rules.protected_paths == PatchRules().protected_paths
    assert protected_match(path, rules.protected_paths) == glob


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_protected_path_is_high_risk_and_never_auto_merges(level: int) -> None:
    changes = [FileChange("src/app.py", 1, 1), FileChange(".github/workflows/ci.yml", 1, 1)]
    assessment = classify(changes, "autofix")
    assert assessment.tier == "high"
    assert assessment.reasons[0] == (
        "path .github/workflows/ci.yml: protected (.github/workflows/**), a human must review it"
    )
    assert may_auto_merge(level, assessment.tier) is False


def test_protected_paths_come_from_the_policy() -> None:
    app = [FileChange("src/app.py", 1, 1)]
    assert classify(app, "autofix", protected=["src/**"]).tier == "high"
    policy = [FileChange("include/policy/x.yaml", 1, 1)]
    assert classify(policy, "autofix", protected=[]).tier == "low"
