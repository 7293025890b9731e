"""Dependency trust on two checkouts against a file:// PEP 691/503 index built in tmp_path."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from triloop.domain.contracts import CheckResult
from triloop.domain.dependency_trust_policy import DependencyTrustPolicy
from triloop.domain.policy import Policy
from triloop.governance.deptrust import dependency_trust

NOW = datetime(2026, 11, 1, tzinfo=UTC)
OLD, FRESH = NOW - timedelta(days=400), NOW - timedelta(days=2)


def _json_page(index: Path, project: str, releases: dict[str, datetime | None]) -> None:
    files = []
    for version, uploaded in releases.items():
        entry: dict[str, object] = {
            "filename": f"{project.replace('-', '_')}-{version}-py3-none-any.whl",
            "url": f"../../files/{project}-{version}.whl",
            "hashes": {},
        }
        if uploaded is not None:
            entry["upload-time"] = uploaded.isoformat().replace("+00:00", "Z")
        files.append(entry)
    (index / project).mkdir(parents=True, exist_ok=True)
    page = {"meta": {"api-version": "1.1"}, "name": project, "files": files}
    (index / project / "index.json").write_text(json.dumps(page))


@pytest.fixture
def index(tmp_path: Path) -> Path:
    root = tmp_path / "index"
    _json_page(root, "requests", {"2.30.0": OLD, "2.31.0": OLD, "3.0.0": OLD})
    _json_page(root, "urllib3", {"2.2.0": OLD, "2.3.0": FRESH})
    (root / "idna").mkdir()
    (root / "idna" / "index.html").write_text(
        '<html><body><a href="idna-3.7-py3-none-any.whl">idna 3.7</a></body></html>'
    )
    return root


def _run(
    tmp_path: Path, base: str, merged: str, index: Path | None, **rules: object
) -> CheckResult:
    for name, text in (("base", base), ("merged", merged)):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "requirements.txt").write_text(text)
    trust = DependencyTrustPolicy(package_index=index.as_uri() if index else None, **rules)
    policy = Policy(dependency_trust=trust)
    return dependency_trust(tmp_path / "base", tmp_path / "merged", policy, now=NOW)


@pytest.mark.parametrize(
    ("merged", "rule_ids", "named"),
    [
        ("requests==2.31.0\n", [], ""),
        ("requests==2.30.0\nurllib3==2.2.0\n", [], ""),
        ("reqeusts==2.31.0\n", ["deptrust.typosquat"], "looks like 'requests' (transposed"),
        ("requests==2.30.0\nacme-nowhere==1.0\n", ["deptrust.unknown-package"], "acme-nowhere"),
        ("requests==2.30.0\nurllib3==2.3.0\n", ["deptrust.too-new"], "uploaded 2.0 days ago"),
        ("requests>=2.30\n", ["deptrust.unpinned"], ">=2.30 is not =="),
        ("requests==3.0.0\n", ["deptrust.semver"], "major version change from 2.30.0"),
        ("requests==2.99.0\n", ["deptrust.unknown-version"], "2.99.0 is not on the index"),
        ("requests==2.30.0\nidna==3.7\n", ["deptrust.release-age-unknown"], "idna==3.7"),
    ],
)
def test_each_added_or_changed_requirement_is_checked(
    tmp_path: Path, index: Path, merged: str, rule_ids: list[str], named: str
) -> None:
    result = _run(tmp_path, "requests==2.30.0\n", merged, index)
    assert result.check_id == "dependency-trust"
    assert result.rule_ids == rule_ids
    assert result.status == ("failed" if rule_ids else "passed")
    assert named in result.excerpt
    assert "python -m triloop.governance.deptrust" in result.command
    if rule_ids:
        assert f"requirements.txt:{merged.count(chr(10))}: " in result.excerpt


@pytest.mark.parametrize(
    ("rules", "merged", "rule_ids"),
    [
        ({"allow_major_upgrades": True}, "requests==3.0.0\n", []),
        ({"require_pins": False}, "requests>=2.30\n", []),
        ({"min_release_age_days": 0}, "requests==2.30.0\nurllib3==2.3.0\nidna==3.7\n", []),
        ({"allowed_names": ["reqeusts"]}, "reqeusts==2.31.0\n", ["deptrust.unknown-package"]),
    ],
)
def test_policy_relaxes_rules(
    tmp_path: Path, index: Path, rules: dict[str, object], merged: str, rule_ids: list[str]
) -> None:
    assert _run(tmp_path, "requests==2.30.0\n", merged, index, **rules).rule_ids == rule_ids


def test_without_an_index_the_offline_rules_still_block(tmp_path: Path) -> None:
    result = _run(tmp_path, "requests==2.30.0\n", "requests==2.30.0\nreqeusts==2.31.0\n", None)
    assert (result.status, result.rule_ids) == ("failed", ["deptrust.typosquat"])
    assert "no package index configured" in result.excerpt
    unchanged = _run(tmp_path, "requests==2.30.0\n", "requests==2.30.0\n", None)
    assert (unchanged.status, unchanged.excerpt.split(";")[0]) == (
        "passed",
        "0 added or changed requirement(s)",
    )


@pytest.mark.parametrize(
    ("merged", "why"),
    [
        ("requests=2.31\n", "not a valid requirement 'requests=2.31'"),
        ("requests===\n", "not a valid requirement: '===' names no version"),
        ("-e ../../etc\n", "-e '../../etc' points outside the repository"),
        ("-r /etc/passwd\n", "-r '/etc/passwd' points outside the repository"),
        ("../outside.whl\n", "a path '../outside.whl' points outside the repository"),
        ("--frobnicate requests\n", "--frobnicate is not a pip option"),
    ],
)
def test_a_line_that_cannot_be_vetted_fails_as_unparsable(
    tmp_path: Path, merged: str, why: str
) -> None:
    result = _run(tmp_path, "", f"requests==2.30.0\n{merged}", None)
    assert (result.status, result.rule_ids) == ("failed", ["deptrust.unparsable"])
    assert f"requirements.txt:2: {merged.strip()}: deptrust.unparsable: {why}" in result.excerpt
    assert "1 added or changed requirement(s)" in result.excerpt  # the readable line: vetted


def test_fine_pip_lines_and_the_base_s_own_bad_lines_pass(tmp_path: Path) -> None:
    fine = "-r requirements.txt\n--index-url https://pypi.org/simple\n"
    fine += "requests==2.30.0 \\\n  --hash=sha256:ab  # pinned, hashed\n"
    assert _run(tmp_path, "", fine, None).status == "passed"
    kept = _run(tmp_path, "requests===\n", "requests===\nidna==3.7\n", None)
    assert (kept.status, kept.rule_ids) == ("passed", [])  # not this PR's line


@pytest.mark.parametrize(
    ("merged", "page", "message"),
    [
        ("requests==2.31.0\n", b"{not json", r"requests/index.json is not PEP 691 JSON"),
        ("requests==2.31.0\n", b'{"files": {}}', r"is not PEP 691 JSON: files is a dict"),
        (
            "requests==2.31.0\n",
            b'{"files": [{"filename": "requests-2.31.0.tar.gz", "upload-time": "yesterday"}]}',
            r"upload-time 'yesterday' is not ISO 8601",
        ),
    ],
)
def test_bad_input_is_an_error_naming_it(
    tmp_path: Path, index: Path, merged: str, page: bytes | None, message: str
) -> None:
    if page is not None:
        (index / "requests" / "index.json").write_bytes(page)
    result = _run(tmp_path, "requests==2.30.0\n", merged, index)
    assert (result.status, result.rule_ids) == ("error", [])
    assert re.search(message, result.excerpt), result.excerpt


def _trees(
    tmp_path: Path,
    base: dict[str, str],
    merged: dict[str, str],
    index: Path | None = None,
    **rules: object,
) -> CheckResult:
    for name, files in (("base", base), ("merged", {**base, **merged})):
        for path, text in files.items():
            (tmp_path / name / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / path).write_text(text)
    trust = DependencyTrustPolicy(package_index=index.as_uri() if index else None, **rules)
    return dependency_trust(tmp_path / "base", tmp_path / "merged", Policy(dependency_trust=trust))


PYPROJECT = '[project]\nname = "x"\ndependencies = [\n  "requests==2.30.0",\n]\n'


@pytest.mark.parametrize(
    ("path", "text", "line", "target"),
    [
        ("requirements.txt", "--index-url https://evil.example/simple\n", 1, "index https://evil"),
        ("requirements.txt", "--extra-index-url=https://evil.example/simple\n", 1, "index https"),
        ("requirements-dev.txt", "six==1.17.0\n--find-links ./wheels\n", 2, "find-links ./wheels"),
        ("requirements.txt", "--trusted-host evil.example\n", 1, "trusted-host evil.example"),
        ("requirements.txt", "idna @ https://evil.example/idna.whl\n", 1, "url https://evil"),
        ("requirements.txt", "git+https://evil.example/idna.git\n", 1, "vcs git+https://evil"),
        ("requirements/dev.txt", "-e .\n", 1, "path ."),
        ("requirements.txt", "./vendor/idna\n", 1, "path vendor/idna"),
        ("pyproject.toml", PYPROJECT + '[tool.uv.sources]\nrequests = { path = "libs/r" }\n', 7,
         "path libs/r (in [tool.uv.sources] requests)"),
        ("pyproject.toml", PYPROJECT + '[[tool.poetry.source]]\nname = "c"\nurl = "https://c/s"\n',
         8, "c = https://c/s: index https://c/s (in [[tool.poetry.source]] c)"),
        ("Pipfile", '[packages]\nidna = {git = "https://evil.example/idna.git"}\n', 2,
         "vcs git+https://evil.example/idna.git (in [packages])"),
        ("uv.lock", '[[package]]\nname = "idna"\nversion = "3.7"\n'
         'source = { registry = "https://evil.example/simple" }\n', 2,
         "idna==3.7: index https://evil"),
        ("setup.py", "setup(dependency_links=['https://evil.example/links'])\n", 1,
         "https://evil.example/links: find-links https://evil.example/links"
         " (in setup(dependency_links=...))"),
    ],
)  # fmt: skip
def test_a_declaration_changing_where_packages_come_from_fails_as_source(
    tmp_path: Path, path: str, text: str, line: int, target: str
) -> None:
    result = _trees(tmp_path, {"pyproject.toml": PYPROJECT}, {path: text})
    assert "deptrust.source" in result.rule_ids and result.status == "failed"
    shown, _, target = target.rpartition(": ")  # what is shown when it is not the line itself
    shown = shown or text.splitlines()[line - 1].strip()
    why = "deptrust.source: changes where packages come from:"
    assert f"{path}:{line}: {shown}: {why} {target}" in result.excerpt, result.excerpt


def test_the_base_s_own_sources_are_not_the_pr_s(tmp_path: Path) -> None:
    base = {"requirements.txt": "--extra-index-url https://corp.example/simple\n-e .\n"}
    merged = {"requirements-dev.txt": "-e .\n--extra-index-url https://corp.example/simple/x\n"}
    result = _trees(tmp_path, base, {"requirements-dev.txt": merged["requirements-dev.txt"][:5]})
    assert (result.status, result.rule_ids) == ("passed", [])
    assert "3 source declaration(s) already on the base, not this PR's" in result.excerpt
    other = _trees(tmp_path / "b", base, merged)
    assert other.rule_ids == ["deptrust.source"]
    assert "requirements-dev.txt:2: --extra-index-url https://corp.example/simple/x" in (
        other.excerpt
    )


def test_the_policy_s_index_is_not_a_source(tmp_path: Path, index: Path) -> None:
    merged = {"requirements.txt": f"--index-url {index.as_uri()}\nrequests==2.31.0\n"}
    result = _trees(tmp_path, {"requirements.txt": "requests==2.30.0\n"}, merged, index)
    assert (result.status, result.rule_ids) == ("passed", []), result.excerpt


@pytest.mark.parametrize(
    ("path", "text", "line", "where"),
    [
        ("pyproject.toml", PYPROJECT.replace('"requests', '"reqeusts'), 4,
         " (in [project] dependencies)"),
        ("pyproject.toml", PYPROJECT + '[dependency-groups]\ntest = ["reqeusts==2.31.0"]\n', 7,
         " (in [dependency-groups] test)"),
        ("pyproject.toml", PYPROJECT + '[build-system]\nrequires = ["reqeusts==2.31.0"]\n', 7,
         " (in [build-system] requires)"),
        ("pyproject.toml",
         PYPROJECT + '[tool.poetry.group.dev.dependencies]\nreqeusts = "2.31.0"\n',
         7, " (in [tool.poetry.group.dev.dependencies])"),
        ("setup.cfg", "[options]\ninstall_requires =\n    reqeusts==2.31.0\n", 3,
         " (in [options] install_requires)"),
        ("setup.py", "setup(\n    extras_require={'t': ['reqeusts==2.31.0']},\n)\n", 2,
         " (in setup(extras_require=...) t)"),
        ("Pipfile", '[dev-packages]\nreqeusts = "==2.31.0"\n', 2, " (in [dev-packages])"),
        ("uv.lock", '[[package]]\nname = "reqeusts"\nversion = "2.31.0"\n', 2, " (in [[package]])"),
        ("poetry.lock", '[[package]]\nname = "reqeusts"\nversion = "2.31.0"\n', 2,
         " (in [[package]])"),
        ("Pipfile.lock", '{"default": {\n"reqeusts": {"version": "==2.31.0"}}}', 2,
         " (in default)"),
        ("pylock.toml", '[[packages]]\nname = "reqeusts"\nversion = "2.31.0"\n', 2,
         " (in [[packages]])"),
        ("test-requirements.txt", "-c constraints.txt\n", 1, " (in (constraints))"),
    ],
)  # fmt: skip
def test_requirements_from_every_place_are_vetted(
    tmp_path: Path, index: Path, path: str, text: str, line: int, where: str
) -> None:
    files = {path: text}
    if path == "test-requirements.txt":
        files["constraints.txt"] = "reqeusts==2.31.0\n"
        line, path = 1, "constraints.txt"
    result = _trees(tmp_path, {"pyproject.toml": PYPROJECT}, files, index)
    assert result.rule_ids == ["deptrust.typosquat"], result.excerpt
    assert f"{path}:{line}: " in result.excerpt
    assert f"deptrust.typosquat: looks like 'requests' (transposed letters){where}" in (
        result.excerpt
    )


@pytest.mark.parametrize(
    ("base", "rules", "rule_ids"),
    [
        ({}, {}, ["deptrust.typosquat"]),
        ({"requirements.txt": "dydantic==1.0\n"}, {}, []),  # the base already uses it
        ({}, {"allowed_names": ["Dydantic"]}, []),
    ],
)
def test_relative_popularity(
    tmp_path: Path, base: dict[str, str], rules: dict[str, object], rule_ids: list[str]
) -> None:
    result = _trees(tmp_path, base, {"requirements-dev.txt": "dydantic==1.0\n"}, **rules)
    assert result.rule_ids == rule_ids
    if rule_ids:
        assert "looks like 'pydantic' (substituted letters; 'pydantic' is #16" in result.excerpt


@pytest.mark.parametrize(
    ("path", "text", "line", "why"),
    [
        ("setup.py", "import os\nsetup(install_requires=os.environ['DEPS'].split())\n", 2,
         "install_requires is not a literal"),
        ("requirements.txt", "-r ../../outside.txt\n", 1, "-r '../../outside.txt' points outside"),
        ("requirements.txt", "six==${SIX}\n", 1, "${SIX} is expanded at install time"),
        ("pyproject.toml", "[project\n", 1, "not valid TOML"),
    ],
)  # fmt: skip
def test_what_cannot_be_vetted_in_any_place_is_unparsable(
    tmp_path: Path, path: str, text: str, line: int, why: str
) -> None:
    result = _trees(tmp_path, {}, {path: text})
    assert (result.status, result.rule_ids) == ("failed", ["deptrust.unparsable"])
    assert f"{path}:{line}: " in result.excerpt and why in result.excerpt


def test_a_hostile_tree_is_read_without_looping(tmp_path: Path) -> None:
    merged = {
        "requirements.txt": "-r a.in\n",
        "a.in": "-r requirements.txt\n-r a.in\nrequests==2.30.0\n",
        "setup.py": "__import__('os').system('touch ran')\nsetup(install_requires=['six'])\n",
    }
    result = _trees(tmp_path, {}, merged, require_pins=False)
    assert (result.status, result.rule_ids) == ("passed", []), result.excerpt
    assert "2 added or changed requirement(s); 3 declaration file(s) read" in result.excerpt
    assert not (tmp_path / "merged" / "ran").exists() and not Path("ran").exists()
