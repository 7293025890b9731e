"""Benchmark: the `secrets` check's recall and false positives over real shapes and look-alikes.

Writes every case of tests/bench/secret_corpus.py as its own file of one committed git
checkout, then runs what governance runs on it: the sandbox's scanner, the very file the
image holds (include/sandbox/secret_scan.py, imported by path), and the semgrep secret rules
(include/semgrep/secrets.yml) when semgrep is installed beside this Python, as the harness runs
them. A real case is found when something is reported on its secret's line; a look-alike is a
false positive when anything is reported in its file. Prints recall, the false positives and
any real case reported under another rule id than expected. Exit status 1 when recall is below
100% or there is more than one false positive.

    .venv/bin/python -m tests.bench.bench_secrets
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from tests.bench.secret_corpus import Case, corpus

ROOT = Path(__file__).resolve().parents[2]
SCANNER = ROOT / "include" / "sandbox" / "secret_scan.py"
RULES = ROOT / "include" / "semgrep" / "secrets.yml"
SEMGREP = Path(sys.executable).with_name("semgrep")
MAX_FALSE_POSITIVES = 1


@dataclass
class Result:
    real: int
    lookalikes: int
    missed: list[str] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)
    wrong_rule: list[str] = field(default_factory=list)
    shared_fingerprint: list[str] = field(default_factory=list)  # distinct secrets, one print
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def recall(self) -> float:
        return (self.real - len(self.missed)) / self.real

    @property
    def ok(self) -> bool:
        return not self.missed and len(self.false_positives) <= MAX_FALSE_POSITIVES


def load_scanner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("triloop_secret_scan", SCANNER)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {SCANNER}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checkout(cases: list[Case], root: Path) -> None:
    for case in cases:
        path = root / case.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(case.content, encoding="utf-8")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "corpus"]):
        subprocess.run([*git, *argv], cwd=root, check=True, capture_output=True)


def semgrep_findings(root: Path) -> set[tuple[str, int, str]]:
    """(path, line, rule) of the semgrep secret rules, run as the sandbox harness runs them."""
    argv = [str(SEMGREP), "scan", "--config", str(RULES), "--json", "--metrics=off"]
    argv += ["--disable-version-check", "--quiet", "."]
    env = {"SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off", "HOME": str(root)}
    env["PATH"] = str(SEMGREP.parent) + ":/usr/bin:/bin"
    proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, check=False)
    report = json.loads(proc.stdout)
    if proc.returncode > 1 or report.get("errors"):
        raise RuntimeError(f"semgrep failed ({proc.returncode}): {proc.stderr[-2000:]!r}")
    return {
        (r["path"], r["start"]["line"], "secrets." + r["check_id"].rsplit("secrets.")[-1])
        for r in report["results"]
    }


def measure(use_semgrep: bool | None = None) -> Result:
    """Scan the corpus; ``use_semgrep`` None: when semgrep is installed beside this Python."""
    real, lookalikes = corpus()
    result = Result(real=len(real), lookalikes=len(lookalikes))
    with tempfile.TemporaryDirectory(prefix="triloop-bench-secrets-") as tmp:
        root, out = Path(tmp) / "repo", Path(tmp) / "out"
        root.mkdir()
        out.mkdir()
        checkout([*real, *lookalikes], root)
        started = time.monotonic()
        status = load_scanner().scan_secrets(root, out)
        result.timings["scanner"] = time.monotonic() - started
        if "error" in status:
            raise RuntimeError(f"the secret scanner broke: {status['error']}")
        report = json.loads((out / "secrets.json").read_text())
        found = {(f["path"], f["line"], f["rule"]) for f in report["findings"]}
        prints = {(f["path"], f["line"]): f["fingerprint"] for f in report["findings"]}
        found |= {(u["path"], -1, "secrets.unscanned") for u in report["unscanned"]}
        scanner_found = set(found)
        if use_semgrep or (use_semgrep is None and SEMGREP.exists()):
            started = time.monotonic()
            found |= semgrep_findings(root)
            result.timings["semgrep"] = time.monotonic() - started
    for case in real:
        rules = {rule for path, line, rule in found if path == case.path and line == case.line}
        ours = {r for p, ln, r in scanner_found if p == case.path and ln == case.line}
        if not rules:
            result.missed.append(case.name)
        elif case.rule not in ours:
            result.wrong_rule.append(f"{case.name}: {sorted(ours) or 'scanner: none'}")
    owners: dict[str, str] = {}
    for case in real:  # every case's value differs: so must the fingerprints
        if (fingerprint := prints.get((case.path, case.line))) is not None:
            if fingerprint in owners:
                result.shared_fingerprint.append(f"{case.name} and {owners[fingerprint]}")
            owners.setdefault(fingerprint, case.name)
    for case in lookalikes:
        rules = sorted({f"{rule}:{line}" for path, line, rule in found if path == case.path})
        if rules:
            result.false_positives.append(f"{case.name} ({case.path}: {', '.join(rules)})")
    return result


def main() -> int:
    result = measure()
    tools = "detect-secrets scanner" + (" + semgrep rules" if "semgrep" in result.timings else "")
    counts = f"{result.real} real shapes, {result.lookalikes} look-alikes"
    print(f"secrets benchmark ({tools}): {counts}")
    found = result.real - len(result.missed)
    print(f"recall: {found}/{result.real} = {result.recall:.1%}")
    for name in result.missed:
        print(f"  missed: {name}")
    print(f"false positives: {len(result.false_positives)}/{result.lookalikes}")
    for name in result.false_positives:
        print(f"  false positive: {name}")
    print(f"scanner rule ids as expected: {result.real - len(result.wrong_rule)}/{result.real}")
    for name in result.wrong_rule:
        print(f"  other rule: {name}")
    print(f"real cases sharing a fingerprint: {len(result.shared_fingerprint)}")
    for names in result.shared_fingerprint:
        print(f"  shared: {names}")
    print("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
