"""Reading a checkout's declarations: every file, includes followed inside it, hostile trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from triloop.discovery import dependencies
from triloop.discovery.dependencies import (
    DependencyError,
    declared_dependencies,
    read_declarations,
)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


PROJECT = {
    "requirements.txt": "-r ci/base.in\n-c pins/constraints.txt\nrequests==2.31.0\n",
    "ci/base.in": "idna==3.7\n",
    "pins/constraints.txt": "urllib3==2.2.2\n",
    "dev-requirements.txt": "ruff==0.6.0\n-e .\n",
    "requirements/test.txt": "pytest==8.3.0\n",
    "pyproject.toml": (
        '[build-system]\nrequires = ["setuptools==75.1.0"]\n'
        '[project]\nname = "x"\ndependencies = ["click==8.1.7"]\n'
        '[project.optional-dependencies]\nfast = ["orjson==3.10.7"]\n'
        '[dependency-groups]\ntest = ["hypothesis==6.100.0"]\nlint = ["mypy==1.11.0"]\n'
    ),
    "setup.py": "setup(install_requires=['six==1.17.0'], tests_require=open('t').read())\n",
    "Pipfile": '[packages]\nflask = "==3.0.3"\n[dev-packages]\ncoverage = "==7.6.1"\n',
    "uv.lock": '[[package]]\nname = "anyio"\nversion = "4.4.0"\n',
    "docs/requirements.txt": "sphinx==7.3.7\n",
    ".venv/requirements.txt": "not read==\n",
    "node_modules/x/requirements.txt": "not read==\n",
}


def test_every_declaration_file_is_read_and_includes_followed(tmp_path: Path) -> None:
    found = read_declarations(_tree(tmp_path, PROJECT))
    assert found.files == [
        "dev-requirements.txt",
        "docs/requirements.txt",
        "requirements/test.txt",
        "requirements.txt",
        "ci/base.in",  # followed from requirements.txt
        "pins/constraints.txt",
        "pyproject.toml",
        "setup.py",
        "Pipfile",
        "uv.lock",
    ]
    by_name = {d.name: d for d in found.dependencies}
    assert (by_name["idna"].path, by_name["idna"].line) == ("ci/base.in", 1)
    assert by_name["urllib3"].scope == "constraint"
    assert [(s.path, s.line, s.origin.target) for s in found.sources] == [
        ("dev-requirements.txt", 2, ".")
    ]
    assert [(p.path, p.line, p.kind) for p in found.problems] == [("setup.py", 1, "dynamic")]


def test_the_environment_is_what_an_install_of_the_project_installs(tmp_path: Path) -> None:
    names = [d.name for d in declared_dependencies(_tree(tmp_path, PROJECT))]
    # not: build requirements, the lint group, constraints, lock entries, docs/, -e .
    assert names == [
        "ruff",
        "pytest",
        "requests",
        "idna",
        "click",
        "orjson",
        "hypothesis",
        "six",
        "flask",
        "coverage",
    ]


def test_include_cycles_end_and_each_file_is_read_once(tmp_path: Path) -> None:
    files = {
        "requirements.txt": "-r a.in\n-r requirements.txt\nsix==1.17.0\n",
        "a.in": "-r b.in\nidna==3.7\n",
        "b.in": "-r a.in\n-r ./requirements.txt\n",
    }
    found = read_declarations(_tree(tmp_path, files))
    assert found.files == ["requirements.txt", "a.in", "b.in"]
    assert [d.name for d in found.dependencies] == ["six", "idna"]
    assert found.problems == []


@pytest.mark.parametrize(
    ("line", "why", "kind"),
    [
        ("-r ../outside.txt", "-r '../outside.txt' points outside the repository", "outside"),
        ("-c /etc/passwd", "-c '/etc/passwd' points outside the repository", "outside"),
        ("-r link.txt", "points outside the repository (a symlink)", "outside"),
        ("-r linked/outside.txt", "points outside the repository (a symlink)", "outside"),
        ("-r missing.txt", "names no file in the repository", "invalid"),
        ("-r ci", "names no file in the repository", "invalid"),
    ],
)
def test_an_include_leaving_the_repository_is_a_problem_never_followed(
    tmp_path: Path, line: str, why: str, kind: str
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("evil==1.0\n")
    checkout = _tree(tmp_path / "repo", {"requirements.txt": f"six==1.17.0\n{line}\n"})
    (checkout / "ci").mkdir()
    os.symlink(outside, checkout / "link.txt")
    os.symlink(tmp_path, checkout / "linked")
    found = read_declarations(checkout)
    assert [d.name for d in found.dependencies] == ["six"]  # evil is never read
    assert [(p.path, p.line, p.why, p.kind) for p in found.problems] == [
        ("requirements.txt", 2, why, kind)
    ]


def test_deep_include_chains_stop(tmp_path: Path) -> None:
    files = {f"r{n}.in": f"-r r{n + 1}.in\npkg{n}==1.0\n" for n in range(12)}
    files["requirements.txt"] = "-r r0.in\n"
    found = read_declarations(_tree(tmp_path, files))
    limit = dependencies.MAX_INCLUDE_DEPTH
    assert len(found.files) == limit + 1
    assert [(p.path, p.kind) for p in found.problems] == [(f"r{limit - 1}.in", "limit")]
    assert "nest deeper than" in found.problems[0].why


def test_huge_files_are_not_read(tmp_path: Path) -> None:
    big = "six==1.17.0\n" * (dependencies.MAX_FILE_BYTES // 12 + 1)
    checkout = _tree(tmp_path, {"requirements.txt": big, "docs/requirements.txt": big})
    found = read_declarations(checkout)
    assert found.dependencies == []
    assert [(p.path, p.kind) for p in found.problems] == [
        ("docs/requirements.txt", "limit"),
        ("requirements.txt", "limit"),
    ]
    with pytest.raises(DependencyError, match=r"requirements\.txt: over the \d+-byte limit"):
        declared_dependencies(checkout)


def test_too_many_declaration_files_stop_the_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dependencies, "MAX_FILES", 3)
    files = {f"requirements/r{n}.txt": f"pkg{n}==1.0\n" for n in range(5)}
    found = read_declarations(_tree(tmp_path, files))
    assert len(found.files) == 3
    assert [p.kind for p in found.problems] == ["limit"]
    assert "more than 3 declaration files" in found.problems[0].why


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"requirements.txt": "ok==1\n--frobnicate\n"}, r"requirements\.txt:2: --frobnicate is"),
        (
            {"requirements.txt": "requests===\n"},
            r"requirements\.txt:1: not a valid requirement: '===' names no .* \('requests==='\)",
        ),
        ({"requirements.txt": "-r base.txt\n"}, r"requirements\.txt:1: names no file"),
        ({"setup.cfg": "[options]\ninstall_requires =\n  a==\n"}, r"setup\.cfg:3: not a valid"),
        ({"Pipfile": "[packages\n"}, r"Pipfile: not valid TOML"),
    ],
)
def test_a_malformed_environment_declaration_raises(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(DependencyError, match=message):
        declared_dependencies(_tree(tmp_path, files))


def test_what_the_environment_cannot_read_statically_is_left_out(tmp_path: Path) -> None:
    files = {
        "requirements.txt": "six==1.17.0\n-e ../sibling\n",
        "setup.py": "setup(install_requires=compute())\n",
        "docs/requirements.txt": "broken==\n",  # not the environment's
    }
    assert [d.name for d in declared_dependencies(_tree(tmp_path, files))] == ["six"]
