"""Failing tests: one Finding per failing (or erroring) test case of pytest's JUnit XML.

The sandbox runs pytest with ``junit_family=xunit1``, so each test case names its ``file`` and
its 0-based ``line``. Rule ``test-failure`` for a failed assertion, ``test-error`` for an error
in setup, teardown or collection; severity high; symbol the test function (Class.test_name,
parameters dropped); message the failure's first line.
"""

from __future__ import annotations

import ast
import functools
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from triloop.discovery.parse import ScanOutputError, make_finding, relative_path
from triloop.discovery.scanners.base import ScanContext
from triloop.discovery.scanners.sandbox_reports import SandboxReportScanner, first_line
from triloop.domain.contracts import Finding

_ENTITY = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_PARAMS = re.compile(r"\[.*\]$")


@functools.lru_cache(maxsize=512)
def _def_lines(source: str) -> dict[str, int]:
    """{qualified name: line of its ``def``} for every function and class in ``source``."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found[f"{prefix}{child.name}"] = child.lineno
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return found


def test_symbol(classname: str, name: str, path: str) -> str:
    """``tests.test_x.TestK`` + ``test_p[2]`` in tests/test_x.py -> ``TestK.test_p``."""
    module = path.removesuffix(".py").replace("/", ".")
    owner = classname.removeprefix(module).strip(".") if classname.startswith(module) else ""
    func = _PARAMS.sub("", name)
    return f"{owner}.{func}" if owner else func


def _message(problem: ElementTree.Element) -> str:
    message = first_line(problem.get("message"))
    if message in ("", "collection failure"):  # the cause is the first "E   ..." line
        causes = [ln[1:].strip() for ln in (problem.text or "").splitlines() if ln[:2] == "E "]
        message = causes[0][:300] if causes else message or "test error"
    return message


class TestFailureScanner(SandboxReportScanner):
    __test__ = False  # not a pytest test class
    name = "pytest"
    report = "junit.xml"

    def enabled(self, ctx: ScanContext) -> bool:
        return ctx.policy.code_scans.tests.enabled

    def parse(self, ctx: ScanContext, path: Path) -> list[Finding]:
        raw = self.read(path)
        if _ENTITY.search(raw):
            raise self.fail(path, "JUnit XML must not declare a DOCTYPE or entities")
        try:
            root = ElementTree.fromstring(raw)
        except ElementTree.ParseError as exc:
            raise self.fail(path, f"is not well-formed JUnit XML: {exc}") from exc
        if root.tag not in ("testsuites", "testsuite"):
            raise self.fail(path, f"root element <{root.tag}> is not <testsuites>/<testsuite>")
        findings = []
        for case in root.iter("testcase"):
            problem = case.find("failure")
            rule = "test-failure"
            if problem is None:
                problem, rule = case.find("error"), "test-error"
            if problem is None:
                continue
            findings.append(self._finding(ctx, path, case, problem, rule))
        return findings

    def _finding(
        self,
        ctx: ScanContext,
        path: Path,
        case: ElementTree.Element,
        problem: ElementTree.Element,
        rule: str,
    ) -> Finding:
        name, file = case.get("name") or "", case.get("file") or ""
        if not name or not file:
            raise self.fail(path, f"a failing <testcase> lacks its name or file: {case.attrib}")
        try:
            rel = relative_path(file, path)
            line = int(case.get("line", "-1")) + 1  # xunit1 lines are 0-based
        except (ScanOutputError, ValueError) as exc:
            raise self.fail(path, f"bad <testcase> {name!r}: {exc}") from exc
        collection = not case.get("classname")
        symbol = "<module>" if collection else test_symbol(case.get("classname", ""), name, rel)
        try:
            source = (ctx.checkout / rel).read_text(errors="replace")
        except OSError:
            source = ""
        # The def line (a decorator's line is what pytest reports for decorated tests).
        line = _def_lines(source).get(symbol, max(line, 1))
        finding = make_finding(
            ctx.repo_id,
            ctx.checkout,
            tool="pytest",
            rule=rule,
            path=rel,
            line=line,
            message=_message(problem),
            severity="high",
            data={"test": f"{rel}::{symbol.replace('.', '::')}", "case": name},
        )
        return finding if collection else finding.model_copy(update={"symbol": symbol})


PYTEST = TestFailureScanner()
