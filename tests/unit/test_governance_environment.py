"""Governance's environment checks on host files: advisories, licenses and the SBOM, diff-aware."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from triloop.discovery.advisories import parse_advisory
from triloop.discovery.dependencies import declared_dependencies
from triloop.discovery.scanners.osv import Database
from triloop.domain.code_scan_policy import CodeScanPolicy, LicenseRules
from triloop.domain.contracts import ArtifactRef, Decision
from triloop.domain.policy import HostScannerPolicy, Policy
from triloop.governance.audits import Trees, licenses, new_advisories, sbom, vulnerabilities
from triloop.governance.environment import run
from triloop.governance.sbom import SbomError, artifact_dir, read_sbom, store


def _osv(advisory_id: str, package: str, fixed: str) -> dict[str, Any]:
    events = [{"introduced": "0"}, {"fixed": fixed}]
    return {
        "id": advisory_id,
        "summary": f"{package} is vulnerable",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
    }


def _trees(tmp: Path, base_reqs: str, merged_reqs: str) -> Trees:
    base, merged, base_out, merged_out = (tmp / n for n in ("base", "merged", "bout", "mout"))
    for path in (base, merged, base_out, merged_out):
        path.mkdir()
    (base / "requirements.txt").write_text(base_reqs)
    (merged / "requirements.txt").write_text(merged_reqs)
    return Trees(base, merged, base_out, merged_out, repo_id="demo", number=7, head_sha="ab" * 20)


def _scan_out(out: Path, tools: dict[str, Any], rows: list[dict[str, str]] | None = None) -> None:
    (out / "result.json").write_text(json.dumps({"tools": tools}))
    if rows is not None:
        (out / "licenses.json").write_text(json.dumps(rows))


def _row(name: str, license_text: str, version: str = "1.0") -> dict[str, str]:
    return {"Name": name, "Version": version, "License": license_text}


def _bom(*components: tuple[str, str]) -> bytes:
    items = [{"type": "library", "name": n, "version": v} for n, v in components]
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": items}
    return json.dumps(doc).encode()


OK = {"exit_code": 0, "argv": []}
DENY_GPL = Policy(code_scans=CodeScanPolicy(licenses=LicenseRules(deny=["GPL-*"])))


def test_only_advisories_the_base_did_not_have_are_new(tmp_path: Path) -> None:
    trees = _trees(tmp_path, "old==1.0\n", "old==1.1\nfresh==0.5\nsafe==2.0\n")
    db: Database = {
        "old": (parse_advisory(_osv("OLD-1", "old", "2.0"), "a"),),
        "fresh": (parse_advisory(_osv("NEW-1", "fresh", "0.6"), "b"),),
        "safe": (parse_advisory(_osv("SAFE-1", "safe", "1.0"), "c"),),
    }
    base, merged = declared_dependencies(trees.base), declared_dependencies(trees.merged)
    new = new_advisories(base, merged, db)
    assert [(f.rule, f.symbol) for f in new] == [("NEW-1", "fresh")]  # old 1.1 is still OLD-1's


def test_vulnerabilities_check_names_the_advisory_and_the_database(tmp_path: Path) -> None:
    trees = _trees(tmp_path, "old==1.0\n", "old==1.0\nfresh==0.5\n")
    db = tmp_path / "osv"
    db.mkdir()
    for record in (_osv("OLD-1", "old", "2.0"), _osv("NEW-1", "fresh", "0.6")):
        (db / f"{record['id']}.json").write_text(json.dumps(record))
    policy = Policy(host_scanners=HostScannerPolicy(osv_database=str(db)))
    result = vulnerabilities(trees, policy, "cmd")
    assert (result.status, result.rule_ids) == ("failed", ["NEW-1"])
    assert f"advisory database {db}: 2 declared dependencies checked, 1 new" in result.excerpt
    assert "requirements.txt:2: fresh 0.5: NEW-1" in result.excerpt
    assert "OLD-1" not in result.excerpt
    unchecked = vulnerabilities(trees, Policy(), "cmd")
    assert unchecked.status == "passed" and "no advisory database configured" in unchecked.excerpt


@pytest.mark.parametrize(
    ("merged_reqs", "database", "message"),
    [
        ("fresh==0.5 ; ;\n", "dir", r"requirements\.txt"),
        ("fresh==0.5\n", "missing", r"advisory database .*missing.* is not readable"),
    ],
)
def test_vulnerabilities_bad_input_is_an_error(
    tmp_path: Path, merged_reqs: str, database: str, message: str
) -> None:
    import re

    trees = _trees(tmp_path, "", merged_reqs)
    db = tmp_path / database
    if database == "dir":
        db.mkdir()
    result = vulnerabilities(
        trees, Policy(host_scanners=HostScannerPolicy(osv_database=str(db))), "c"
    )
    assert result.status == "error" and re.search(message, result.excerpt), result.excerpt


def test_licenses_block_only_what_the_merged_environment_adds(tmp_path: Path) -> None:
    trees = _trees(tmp_path, "", "")
    _scan_out(trees.base_out, {"licenses": OK}, [_row("oldgpl", "GPL-2.0-only")])
    merged_rows = [
        _row("oldgpl", "GPL-2.0-only"),
        _row("newgpl", "GNU General Public License v3 (GPLv3)", "3.1"),
        _row("fine", "MIT License"),
    ]
    _scan_out(trees.merged_out, {"licenses": OK}, merged_rows)
    result = licenses(trees, DENY_GPL, "cmd")
    assert result is not None
    assert (result.status, result.rule_ids) == ("failed", ["license-denied"])
    assert "newgpl 3.1" in result.excerpt and "GPL-3.0-only" not in result.excerpt  # as listed
    assert "oldgpl" not in result.excerpt.split("new", 1)[1]


@pytest.mark.parametrize(
    ("merged_tools", "rows", "policy", "status", "excerpt"),
    [
        ({}, None, DENY_GPL, None, ""),  # an older sandbox: not this check's to judge
        (
            {"licenses": {**OK, "error": "installing the dependencies failed (exit 1): boom"}},
            None,
            DENY_GPL,
            "error",
            "merged environment: scanner licenses: failed in the sandbox: installing",
        ),
        ({"licenses": OK}, None, DENY_GPL, "error", "licenses.json: is missing"),
        ({"licenses": OK}, [_row("x", "GPL-3.0-only")], Policy(), "passed", "no license policy"),
        (
            {"licenses": {**OK, "skipped": "no wheelhouse: no dependencies"}},
            None,
            DENY_GPL,
            "passed",
            "no wheelhouse",
        ),
    ],
)
def test_licenses_statuses(
    tmp_path: Path,
    merged_tools: dict[str, Any],
    rows: list[dict[str, str]] | None,
    policy: Policy,
    status: str | None,
    excerpt: str,
) -> None:
    trees = _trees(tmp_path, "", "")
    _scan_out(trees.base_out, {})
    _scan_out(trees.merged_out, merged_tools, rows)
    result = licenses(trees, policy, "cmd")
    assert (result.status if result else None) == status
    assert result is None or excerpt in result.excerpt


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "is missing"),
        (b"{not json", "is not valid JSON"),
        (b'{"bomFormat": "SPDX"}', "is not a CycloneDX document"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [7]}', "malformed"),
        (b'{"bomFormat": "CycloneDX", "components": []}', "specVersion or components"),
    ],
)
def test_unreadable_sboms_are_refused(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "sbom.cdx.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SbomError, match=message):
        read_sbom(path)


def test_sboms_are_stored_once_and_never_overwritten(tmp_path: Path) -> None:
    folder = artifact_dir(tmp_path / "artifacts", "demo", 7, "ab" * 20)
    assert folder == tmp_path / "artifacts" / "governance" / "demo" / "7" / ("ab" * 20)
    (tmp_path / "a.json").write_bytes(_bom(("six", "1.17.0")))
    first = read_sbom(tmp_path / "a.json")
    assert first.components == ["six==1.17.0"]
    ref = store(first, folder)
    assert store(first, folder) == ref  # a re-run stores nothing new
    assert ref.path == str(folder / "sbom.cdx.json")
    assert hashlib.sha256(Path(ref.path).read_bytes()).hexdigest() == ref.sha256
    (tmp_path / "b.json").write_bytes(_bom(("six", "1.16.0")))
    other = store(read_sbom(tmp_path / "b.json"), folder)
    assert other.path != ref.path and Path(ref.path).read_bytes() == _bom(("six", "1.17.0"))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["sbom.cdx.json", f"sbom.{other.sha256[:16]}.cdx.json"]
    )
    with pytest.raises(SbomError, match=r"repository id '\.\./x' cannot name"):
        artifact_dir(tmp_path, "../x", 7, "ab" * 20)


def test_the_sbom_check_stores_the_artifact_and_reports_it(tmp_path: Path) -> None:
    trees = _trees(tmp_path, "", "six==1.17.0\n")
    _scan_out(trees.merged_out, {"sbom": OK})
    (trees.merged_out / "sbom.cdx.json").write_bytes(_bom(("six", "1.17.0")))
    result, ref = sbom(trees, tmp_path / "artifacts", "cmd")
    assert result.status == "passed" and ref is not None
    assert ref.path in result.excerpt and ref.sha256 in result.excerpt
    assert "1 component(s): six==1.17.0" in result.excerpt
    decision = Decision(repo_id="demo", number=7, outcome="blocked", risk="low", artifacts=[ref])
    assert Decision.model_validate(decision.model_dump(mode="json")).artifacts == [ref]
    assert (
        Decision.model_validate(
            {"repo_id": "d", "number": 1, "outcome": "blocked", "risk": "low"}
        ).artifacts
        == []
    )
    _scan_out(trees.merged_out, {"sbom": {**OK, "error": "no environment: pip download failed"}})
    broken, none = sbom(trees, tmp_path / "artifacts", "cmd")
    assert (broken.status, none) == ("error", None)
    assert (
        "cyclonedx-py failed in the sandbox: no environment: pip download failed" in broken.excerpt
    )
    assert isinstance(ref, ArtifactRef)


def test_an_older_sandbox_gives_only_the_host_side_check(tmp_path: Path) -> None:
    trees = _trees(tmp_path, "", "")
    for out in (trees.base_out, trees.merged_out):
        _scan_out(out, {"ruff": OK, "semgrep": OK})
    evidence = run(trees, DENY_GPL, None, tmp_path / "artifacts")
    assert [c.check_id for c in evidence.checks] == ["vulnerabilities"]
    assert evidence.artifacts == [] and not (tmp_path / "artifacts").exists()


def test_the_recorded_command_reproduces_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shlex

    from triloop.governance.environment import main

    trees = _trees(tmp_path, "", "fresh==0.5\n")
    db = tmp_path / "osv"
    db.mkdir()
    (db / "NEW-1.json").write_text(json.dumps(_osv("NEW-1", "fresh", "0.6")))
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(f"host_scanners:\n  osv_database: {db}\n")
    policy = Policy(host_scanners=HostScannerPolicy(osv_database=str(db)))
    command = trees.command("vulnerabilities", policy_file)
    recorded = vulnerabilities(trees, policy, command)
    env, _python, _m, _module, *args = shlex.split(command)
    monkeypatch.setenv(*env.split("=", 1))
    assert main(args) == 1
    rerun = json.loads(capsys.readouterr().out)
    assert (rerun["status"], rerun["rule_ids"], rerun["command"]) == ("failed", ["NEW-1"], command)
    assert rerun["excerpt"] == recorded.excerpt
