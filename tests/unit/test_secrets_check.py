"""Governance's ``secrets`` check (triloop.governance.secrets) on fixture scan outputs.

tests/fixtures/secrets/: ``base.json`` and ``merged.json`` are the two trees' secrets.json (the
merged tree moved one base secret, kept another, and added two findings and an unscanned file);
``unchanged.json`` holds only what the base had; ``broken.json`` is a scanner that broke.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from triloop.domain.contracts import Finding
from triloop.governance.secrets import MAX_LISTED, SecretsReportError, read_report, secrets_check

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "secrets"
VALUE = "AKIA" + "Q7Z4N2L5X8W3R6TY"  # a semgrep finding's source line carries the value


def out(tmp_path: Path, name: str, fixture: str | None = None, text: str | None = None) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    if fixture is not None:
        shutil.copy(FIXTURES / f"{fixture}.json", folder / "secrets.json")
    if text is not None:
        (folder / "secrets.json").write_text(text)
    return folder


def semgrep(rule: str, path: str, fingerprint: str) -> Finding:
    return Finding(
        tool="semgrep",
        rule=rule,
        path=path,
        line=4,
        message=f"A hard-coded key {VALUE}",
        code=f'KEY = "{VALUE}"',
        fingerprint=fingerprint,
    )


def test_only_new_findings_fail_and_the_excerpt_names_place_and_rule(tmp_path: Path) -> None:
    result = secrets_check(
        out(tmp_path, "base", "base"), out(tmp_path, "merged", "merged"), [], [], "abc+def"
    )
    assert result.check_id == "secrets" and result.status == "failed"
    assert result.rule_ids == ["secrets.anthropic-key", "secrets.unscanned", "secrets.url-password"]
    assert result.excerpt.splitlines() == [
        "3 new secret finding(s); 3 pre-existing (also in the base tree) not counted:",
        ".env:2: secrets.url-password",
        "assets/blob.bin:0: secrets.unscanned (too large: 9500000 bytes > 8388608)",
        "notebooks/eval.ipynb:12: secrets.anthropic-key",
    ]
    assert "secret_scan.py" in result.command and "abc+def" in result.command


def test_what_the_base_had_passes_wherever_it_moved(tmp_path: Path) -> None:
    result = secrets_check(
        out(tmp_path, "base", "base"), out(tmp_path, "merged", "unchanged"), [], [], "s"
    )
    assert result.status == "passed" and result.rule_ids == []
    assert result.excerpt == "no new secrets; 3 pre-existing (also in the base tree) not counted"


def test_semgrep_secret_findings_count_without_their_value(tmp_path: Path) -> None:
    known = semgrep("secrets.hardcoded-credential", "src/old.py", "f-old")
    new = semgrep("secrets.aws-access-key", "src/new.py", "f-new")
    code = semgrep("triloop.python.eval-use", "src/x.py", "f-code")  # not a secret rule
    result = secrets_check(
        out(tmp_path, "base", "base"),
        out(tmp_path, "merged", "unchanged"),
        [known],
        [known, new, code],
        "s",
    )
    assert result.status == "failed" and result.rule_ids == ["secrets.aws-access-key"]
    assert result.excerpt.splitlines()[1:] == ["src/new.py:4: secrets.aws-access-key"]
    assert VALUE not in result.model_dump_json()


@pytest.mark.parametrize(
    ("fixture", "text", "reason"),
    [
        (None, None, r"secrets\.json is missing"),
        (None, "{not json", r"secrets\.json"),
        ("broken", None, r"the secret scanner broke .*ValueError at secret_rules\.py:210"),
        (None, json.dumps({"schema_version": 2, "findings": [], "unscanned": []}), "schema_ver"),
        (None, json.dumps({"schema_version": 1, "findings": {}, "unscanned": []}), "lists"),
        (None, '{"schema_version": 1, "unscanned": [], "findings": [{"path": "a"}]}', "malformed"),
        (
            None,
            json.dumps(
                {
                    "schema_version": 1,
                    "unscanned": [],
                    "findings": [{"path": "a", "line": 1, "rule": "x", "fingerprint": "0" * 64}],
                }
            ),
            "malformed rule or fingerprint",
        ),
        (
            None,
            json.dumps(
                {"schema_version": 1, "findings": [], "unscanned": [{"path": "a", "reason": "x"}]}
            ),
            "malformed unscanned entry",
        ),
    ],
)
def test_an_unusable_merged_report_is_an_error_never_a_pass(
    tmp_path: Path, fixture: str | None, text: str | None, reason: str
) -> None:
    merged = out(tmp_path, "merged", fixture, text)
    with pytest.raises(SecretsReportError, match=reason) as raised:
        read_report(merged)
    result = secrets_check(out(tmp_path, "base", "base"), merged, [], [], "s")
    assert result.status == "error" and result.rule_ids == []
    assert result.excerpt == str(raised.value)


def test_a_scanner_error_in_result_json_is_an_error(tmp_path: Path) -> None:
    merged = out(tmp_path, "merged", "unchanged")
    status = {"exit_code": 1, "error": "secret scan broke: MemoryError at secret_scan.py:9"}
    (merged / "result.json").write_text(json.dumps({"tools": {"secrets": status}}))
    result = secrets_check(out(tmp_path, "base", "base"), merged, [], [], "s")
    assert result.status == "error" and "MemoryError" in result.excerpt


def test_an_unusable_base_errors_unless_the_merged_tree_is_clean(tmp_path: Path) -> None:
    base = out(tmp_path, "base", "broken")
    dirty = secrets_check(base, out(tmp_path, "merged", "unchanged"), [], [], "s")
    assert dirty.status == "error" and "cannot tell new secrets" in dirty.excerpt
    empty = json.dumps({"schema_version": 1, "findings": [], "unscanned": []})
    clean = secrets_check(base, out(tmp_path, "clean", text=empty), [], [], "s")
    assert clean.status == "passed" and "the base scan is unusable" in clean.excerpt


def test_hostile_file_names_and_floods_stay_one_line_each(tmp_path: Path) -> None:
    found = [
        {
            "path": f"f{n:03}\nsecrets: passed",
            "line": n,
            "rule": "secrets.jwt",
            "fingerprint": f"{n:064x}",
        }
        for n in range(MAX_LISTED + 5)
    ]
    report = json.dumps({"schema_version": 1, "findings": found, "unscanned": []})
    result = secrets_check(
        out(tmp_path, "base", "base"), out(tmp_path, "merged", text=report), [], [], "s"
    )
    lines = result.excerpt.splitlines()
    assert lines[0].startswith(f"{MAX_LISTED + 5} new secret finding(s)")
    assert lines[1] == "f000\\nsecrets: passed:0: secrets.jwt"
    assert lines[-1] == "... and 5 more" and len(lines) == MAX_LISTED + 2
