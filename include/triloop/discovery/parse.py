"""Turn raw scanner output (written by the sandbox) into normalised Findings.

Scanner JSON is untrusted: it came out of a container that ran the repository's code.
Anything malformed raises :class:`ScanOutputError` naming the file and what was wrong.
"""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path
from typing import Any

from triloop.domain.contracts import Finding, Severity
from triloop.domain.fingerprint import finding_fingerprint, statement_at
from triloop.sandbox_files import SandboxFileError, read_sandbox_file

CONTAINER_ROOT = "/workspace/"
# semgrep prefixes rule ids with the rules file's directory (/opt/triloop/semgrep in the image).
SEMGREP_RULE_PREFIX = "opt.triloop.semgrep."
_SEMGREP_SEVERITY: dict[str, Severity] = {
    "INFO": "low",
    "WARNING": "medium",
    "ERROR": "high",
    "CRITICAL": "critical",
}


MAX_OUTPUT_BYTES = 64 << 20
"""The largest scanner output (ruff, semgrep, result.json) the host reads."""


class ScanOutputError(ValueError):
    """Scanner output is missing or malformed."""


def load_json(path: Path, limit: int = MAX_OUTPUT_BYTES) -> Any:
    """A JSON file the sandbox wrote; its size is checked before it is read."""
    try:
        return json.loads(read_sandbox_file(path, limit))
    except FileNotFoundError as exc:
        raise ScanOutputError(f"scanner output {path} is missing") from exc
    except SandboxFileError as exc:
        raise ScanOutputError(f"scanner output {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ScanOutputError(f"scanner output {path} is not UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ScanOutputError(f"scanner output {path} is not valid JSON: {exc}") from exc


def relative_path(filename: str, where: Path) -> str:
    rel = filename.removeprefix(CONTAINER_ROOT).removeprefix("./")
    if rel.startswith("/") or ".." in Path(rel).parts:
        raise ScanOutputError(f"scanner output {where} names a path outside the repo: {filename}")
    return rel


@functools.lru_cache(maxsize=4096)
def _symbols(source: str) -> tuple[tuple[int, int, str], ...]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                spans.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return tuple(spans)


def _context(checkout: Path, rel: str, line: int) -> tuple[str, str, str]:
    """(enclosing symbol, source line, whole statement) read from the host checkout."""
    try:
        source = (checkout / rel).read_text(errors="replace")
    except (OSError, ValueError):  # ValueError: a NUL in the path (refused after parsing)
        return "", "", ""
    lines = source.splitlines()
    code = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    inner = [s for s in _symbols(source) if s[0] <= line <= s[1]]
    symbol = max(inner, key=lambda s: s[0])[2] if inner else "<module>"
    return symbol, code, statement_at(source, line)


def make_finding(repo_id: str, checkout: Path, **fields: Any) -> Finding:
    """A Finding with its enclosing symbol, source line and fingerprint read from the checkout.

    The fingerprint hashes the whole statement, so a formatter splitting it keeps it.
    """
    symbol, code, statement = _context(checkout, fields["path"], fields["line"])
    fp = finding_fingerprint(repo_id, fields["rule"], fields["path"], symbol, statement)
    return Finding(symbol=symbol, code=code, fingerprint=fp, **fields)


def parse_ruff(path: Path, repo_id: str, checkout: Path) -> list[Finding]:
    data = load_json(path)
    if not isinstance(data, list):
        raise ScanOutputError(f"scanner output {path}: expected a JSON list of ruff diagnostics")
    findings = []
    for item in data:
        try:
            fix = item.get("fix") or {}
            findings.append(
                make_finding(
                    repo_id,
                    checkout,
                    tool="ruff",
                    rule=str(item["code"] or "syntax-error"),
                    path=relative_path(str(item["filename"]), path),
                    line=int(item["location"]["row"]),
                    message=str(item["message"]),
                    severity="low",
                    fixable=fix.get("applicability") == "safe",
                )
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ScanOutputError(f"scanner output {path}: malformed ruff entry: {exc!r}") from exc
    return findings


def parse_semgrep(path: Path, repo_id: str, checkout: Path) -> list[Finding]:
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ScanOutputError(f"scanner output {path}: expected a semgrep JSON report")
    findings = []
    for item in data["results"]:
        try:
            findings.append(
                make_finding(
                    repo_id,
                    checkout,
                    tool="semgrep",
                    rule=str(item["check_id"]).removeprefix(SEMGREP_RULE_PREFIX),
                    path=relative_path(str(item["path"]), path),
                    line=int(item["start"]["line"]),
                    message=str(item["extra"]["message"]).strip(),
                    severity=_SEMGREP_SEVERITY.get(str(item["extra"].get("severity")), "medium"),
                )
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ScanOutputError(
                f"scanner output {path}: malformed semgrep result: {exc!r}"
            ) from exc
    return findings


def parse_scan_dir(out_dir: Path, repo_id: str, checkout: Path) -> list[Finding]:
    """All findings of one sandbox ``scan`` run (ruff.json, semgrep.json, result.json)."""
    result = load_json(out_dir / "result.json")
    tools = result.get("tools", {}) if isinstance(result, dict) else {}
    for tool in ("ruff", "semgrep"):
        status = tools.get(tool)
        if not isinstance(status, dict) or "exit_code" not in status:
            raise ScanOutputError(f"scanner output {out_dir}/result.json: no status for {tool}")
    return parse_ruff(out_dir / "ruff.json", repo_id, checkout) + parse_semgrep(
        out_dir / "semgrep.json", repo_id, checkout
    )
