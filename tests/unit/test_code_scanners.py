"""The sandbox code scanners' host-side parsers (pytest, coverage, licenses) on recorded output.

The reports in tests/fixtures/code_scans are what the sandbox's tools wrote (pytest 9 xunit1,
coverage.py 7.17 JSON, pip-licenses 5.5 JSON); malformed ones fail only their scanner, with
a ScannerError naming the scanner and the file.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from triloop.discovery.scanners import SCANNERS, ScanContext, ScannerError, run_scanners
from triloop.discovery.scanners.coverage_gaps import COVERAGE
from triloop.discovery.scanners.licenses import LICENSES, verdict
from triloop.discovery.scanners.pytest_junit import PYTEST
from triloop.domain.code_scan_policy import CodeScanPolicy, LicenseRules
from triloop.domain.policy import Policy, load_policy

from tests.support.rows import git_repo

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "code_scans"
OK = {"exit_code": 0, "argv": ["x"], "duration_s": 0.1}
TEST_OK = (
    "import pytest\n\nclass TestK:\n    @pytest.mark.parametrize('v', [1, 2])\n"
    "    def test_p(self, v):\n        assert v == 1\n\n@pytest.fixture\ndef boom():\n"
    "    raise RuntimeError('fixture exploded')\n\ndef test_e(boom):\n    pass\n"
)
LONELY = "def unused(x):\n    if x:\n        return 1\n    y = x * 2\n    return y + 3\n"
FILES = {
    "tests/test_bad.py": "import nosuchmod\n\ndef test_x():\n    pass\n",
    "tests/test_ok.py": TEST_OK,
    "tests/test_calc.py": "def test_add():\n    assert True\n",
    "pkg/__init__.py": "",
    "pkg/calc.py": "def add(a, b):\n    return a + b\n",
    "pkg/lonely.py": LONELY,
    "requirements.txt": "six==1.17.0\npackaging>=24\n",
}


def context(
    tmp_path: Path, reports: dict[str, str], tools: dict[str, Any], policy: Policy | None = None
) -> ScanContext:
    checkout = git_repo(tmp_path / "repo", FILES)
    out = tmp_path / "out"
    out.mkdir()
    for name, body in reports.items():
        (out / name).write_text(body)
    (out / "result.json").write_text(json.dumps({"command": "scan", "tools": tools}))
    deny = Policy.model_validate({"code_scans": {"licenses": {"deny": ["MPL-*", "MIT"]}}})
    return ScanContext("r", checkout, out, policy or deny)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_each_failing_test_is_one_finding(tmp_path: Path) -> None:
    ctx = context(tmp_path, {"junit.xml": fixture("junit_failures.xml")}, {"pytest": OK})
    found = [(f.rule, f.path, f.line, f.symbol, f.message, f.severity) for f in PYTEST.scan(ctx)]
    assert found == [
        (
            "test-error",
            "tests/test_bad.py",
            1,
            "<module>",
            "ModuleNotFoundError: No module named 'nosuchmod'",
            "high",
        ),
        ("test-failure", "tests/test_ok.py", 5, "TestK.test_p", "assert 2 == 1", "high"),
        (
            "test-error",
            "tests/test_ok.py",
            12,
            "test_e",
            'failed on setup with "RuntimeError: fixture exploded"',
            "high",
        ),
    ]


def test_the_least_covered_code_weighted_by_churn(tmp_path: Path) -> None:
    report = json.loads(fixture("coverage.json"))
    # Two more gaps of the same size as pkg/lonely.py; pkg/hot.py changed in 3 more commits.
    for name in ("pkg/hot.py", "pkg/cold.py"):
        report["files"][name] = report["files"]["pkg/lonely.py"]
    ctx = context(tmp_path, {"coverage.json": json.dumps(report)}, {"coverage": OK})
    for n in range(3):
        (ctx.checkout / "pkg" / "hot.py").write_text(LONELY + f"# {n}\n")
        subprocess.run(["git", "add", "-A"], cwd=ctx.checkout, check=True)
        commit = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"{n}"]
        subprocess.run(commit, cwd=ctx.checkout, check=True)
    found = COVERAGE.scan(ctx)
    assert [(f.rule, f.path, f.data["churn_commits"], f.data["score"]) for f in found] == [
        ("coverage-gap", "pkg/hot.py", 3, 12.5),
        ("coverage-gap", "pkg/lonely.py", 1, 7.5),
        ("coverage-gap", "pkg/cold.py", 0, 5.0),
    ]
    assert found[1].data["least_covered_function"] == "unused" and found[1].line == 1
    top = Policy.model_validate({"code_scans": {"coverage": {"top_n": 1}}})
    assert [f.path for f in COVERAGE.scan(ScanContext("r", ctx.checkout, ctx.output_dir, top))] == [
        "pkg/hot.py"
    ]


def test_licenses_the_policy_denies(tmp_path: Path) -> None:
    ctx = context(tmp_path, {"licenses.json": fixture("licenses.json")}, {"licenses": OK})
    found = [(f.rule, f.path, f.line, f.symbol, f.message) for f in LICENSES.scan(ctx)]
    assert found == [
        (
            "license-denied",
            "requirements.txt",
            0,
            "pyyaml",
            "pyyaml 6.0.4 (a transitive dependency) is licensed MIT License: denied by the policy",
        ),
        (
            "license-denied",
            "requirements.txt",
            0,
            "attrs",
            "attrs 26.1.0 (a transitive dependency) is licensed MIT: denied by the policy",
        ),
        (
            "license-denied",
            "requirements.txt",
            0,
            "certifi",
            "certifi 2026.10.19.post1 (a transitive dependency) is licensed"
            " Mozilla Public License 2.0 (MPL 2.0): denied by the policy",
        ),
        (
            "license-denied",
            "requirements.txt",
            0,
            "python-slugify",
            "python-slugify 9.2.0 (a transitive dependency) is licensed MIT: denied by the policy",
        ),
        (
            "license-denied",
            "requirements.txt",
            1,
            "six",
            "six 1.17.0 is licensed MIT License: denied by the policy",
        ),
    ]


@pytest.mark.parametrize(
    ("license_text", "deny", "allow", "expected"),
    [
        ("MIT License", [], [], None),
        ("MIT License", ["MIT"], [], "license-denied"),
        ("Apache-2.0 OR BSD-2-Clause", ["Apache-2.0"], [], None),
        ("Apache-2.0 OR BSD-2-Clause", ["Apache-2.0", "BSD-*"], [], "license-denied"),
        ("MIT AND GPL-3.0-only", ["gpl-*"], [], "license-denied"),
        ("MIT AND GPL-3.0-only", [], ["MIT"], "license-not-allowed"),
        ("MIT AND GPL-3.0-only", [], ["MIT", "GPL-3.0-only"], None),
        ("UNKNOWN", ["GPL-*"], [], None),
        ("UNKNOWN", [], ["MIT"], "license-not-allowed"),
        ("GNU General Public License v2 or later (GPLv2+)", ["GPL-*"], [], "license-denied"),
        ("Artistic License; GNU General Public License (GPL)", ["LicenseRef-GPL"], [], None),
    ],
)
def test_license_verdicts(
    license_text: str, deny: list[str], allow: list[str], expected: str | None
) -> None:
    assert verdict(license_text, LicenseRules(deny=deny, allow=allow)) == expected


BAD_XML = '<testsuites><testcase name="t" file="a.py"><failure message="x"/></testcase>'
ENTITY = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><testsuites/>'
OUTSIDE = (
    '<testsuites><testcase name="t" file="/etc/passwd" line="1"><failure/></testcase></testsuites>'
)
COVERAGE_ENTRY = {"summary": {"num_statements": 3, "missing_lines": 9}, "missing_lines": []}


@pytest.mark.parametrize(
    ("scanner", "report", "body", "message"),
    [
        ("pytest", "junit.xml", BAD_XML, r"junit.xml: is not well-formed JUnit XML"),
        ("pytest", "junit.xml", ENTITY, r"junit.xml: JUnit XML must not declare a DOCTYPE"),
        ("pytest", "junit.xml", "<html/>", r"root element <html> is not <testsuites>"),
        ("pytest", "junit.xml", OUTSIDE, r"names a path outside the repo: /etc/passwd"),
        ("pytest", "other.xml", "", r"junit.xml: is missing"),
        ("coverage", "coverage.json", "{oops", r"coverage.json: is not valid JSON"),
        ("coverage", "coverage.json", "[]", r"coverage.json: expected coverage.py's JSON"),
        ("coverage", "coverage.json", '{"files": {"a.py": {}}}', r"malformed entry for 'a.py'"),
        (
            "coverage",
            "coverage.json",
            json.dumps({"files": {"a.py": COVERAGE_ENTRY}}),
            r"'a.py' misses 9 of 3 statements",
        ),
        ("licenses", "licenses.json", "\x00\x01", r"licenses.json: is not valid JSON"),
        ("licenses", "licenses.json", "{}", r"licenses.json: expected pip-licenses' JSON list"),
        ("licenses", "licenses.json", '[{"Name": "x"}]', r"malformed package entry"),
    ],
)
def test_malformed_reports_fail_only_their_scanner(
    tmp_path: Path, scanner: str, report: str, body: str, message: str
) -> None:
    tools = {"ruff": OK, "pytest": OK, "coverage": OK, "licenses": OK}
    ruff = json.dumps([])
    ctx = context(tmp_path, {report: body, "ruff.json": ruff}, tools)
    (ctx.output_dir / "semgrep.json").write_text('{"results": []}')
    tools["semgrep"] = OK
    (ctx.output_dir / "result.json").write_text(json.dumps({"tools": tools}))
    wanted = {s.name: s for s in SCANNERS}[scanner]
    with pytest.raises(ScannerError, match=rf"^scanner {scanner}: .*{message}"):
        wanted.scan(ctx)
    findings, failures = run_scanners(ctx, (*[s for s in SCANNERS if s.name == "ruff"], wanted))
    assert list(failures) == [scanner] and findings == []


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ({**OK, "error": "pytest exceeded its time budget of 300s"}, r"time budget of 300s"),
        ({**OK, "skipped": "no tests collected"}, []),
        (None, "not applied"),
    ],
)
def test_sandbox_status_decides(tmp_path: Path, status: Any, outcome: Any) -> None:
    tools = {} if status is None else {"pytest": status}
    ctx = context(tmp_path, {}, tools)
    if outcome == "not applied":  # an image older than these scanners, or a host stand-in
        assert not PYTEST.applies(ctx)
    elif isinstance(outcome, str):
        assert PYTEST.applies(ctx)
        with pytest.raises(
            ScannerError, match=rf"scanner pytest: failed in the sandbox: .*{outcome}"
        ):
            PYTEST.scan(ctx)
    else:
        assert PYTEST.scan(ctx) == outcome


def test_policy_switches_and_defaults(tmp_path: Path) -> None:
    ctx = context(tmp_path, {"licenses.json": fixture("licenses.json")}, {"licenses": OK}, Policy())
    assert not LICENSES.applies(ctx)  # an empty deny list (the default) finds nothing
    off = Policy.model_validate({"code_scans": {"tests": {"enabled": False}}})
    assert not PYTEST.applies(ScanContext("r", ctx.checkout, ctx.output_dir, off))
    with pytest.raises(ValueError, match=r"'GNU GPL' is not an SPDX license id"):
        Policy.model_validate({"code_scans": {"licenses": {"deny": ["GNU GPL"]}}})
    default = load_policy(ROOT / "include" / "policy" / "default.yaml")
    assert default.code_scans == CodeScanPolicy()  # the file documents the defaults
