"""Benchmark: the content rules on real code, for honest autofix changes and for hostile ones.

Samples Python files from an installed site-packages (real code nobody wrote for Triloop):

- honest: runs ``ruff check --fix`` with the policy's default ``autofix_rules`` over copies of
  the files and counts the changed files ``content_risks`` flags (each one would wait for a
  human) and prints them;
- hostile: appends each trick of tests/unit/test_content_risk.py's HOSTILE table to some of the
  files and counts those the rules miss (exit status 1 if any);
- cost: milliseconds per analysed file and per changed file (both sides and the comparison).

    .venv/bin/python -m tests.bench.bench_diff_risk [--files 3000] [--hostile-files 100]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from triloop.domain.policy import load_policy
from triloop.governance.content_ast import Unparsable, uses
from triloop.governance.content_risk import content_risks

from tests.unit.test_content_risk import HOSTILE

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")


def _sample(site: Path, count: int, seed: int) -> list[Path]:
    files = sorted(
        p for p in site.rglob("*.py") if p.stat().st_size < 200_000 and "/tests/" not in str(p)
    )
    return random.Random(seed).sample(files, min(count, len(files)))


def honest(sample: list[Path]) -> int:
    started, unparsable = time.perf_counter(), 0
    for path in sample:
        try:
            uses(path.read_text(errors="replace"))
        except Unparsable:
            unparsable += 1
    per_file = (time.perf_counter() - started) / len(sample) * 1000
    print(f"analysed {len(sample)} files: {per_file:.1f} ms each, {unparsable} do not parse")
    rules = load_policy(ROOT / "include" / "policy" / "default.yaml").autofix_rules
    with tempfile.TemporaryDirectory() as tmp:
        copies = [Path(tmp) / f"f{i}.py" for i in range(len(sample))]
        for src, dst in zip(sample, copies, strict=True):
            shutil.copyfile(src, dst)
        argv = [str(RUFF), "check", "--fix", "--no-cache", "--isolated", "--exit-zero", "-q"]
        subprocess.run([*argv, "--select", ",".join(rules), tmp], check=True, capture_output=True)
        changed = flagged = 0
        spent = 0.0
        for src, dst in zip(sample, copies, strict=True):
            before, after = src.read_text(errors="replace"), dst.read_text(errors="replace")
            if before == after:
                continue
            changed += 1
            started = time.perf_counter()
            reasons = content_risks(str(src), before, after)
            spent += time.perf_counter() - started
            if reasons:
                flagged += 1
                print(f"  flagged: {reasons[0]}")
    share = flagged / max(changed, 1) * 100
    print(
        f"ruff --fix ({len(rules)} rules) changed {changed} files; flagged {flagged} ({share:.2f}%)"
    )
    print(f"content_risks: {spent / max(changed, 1) * 1000:.1f} ms per changed file")
    return flagged


def hostile(sample: list[Path]) -> int:
    missed = 0
    for path in sample:
        base = path.read_text(errors="replace")
        for name, snippet, category, _ in HOSTILE:
            merged = base.rstrip("\n") + "\n\n\n" + snippet
            found = content_risks("x.py", base, merged)
            if not any(r.startswith(f"content: {category}") for r in found):
                missed += 1
                print(f"  missed {name} in {path}")
    print(f"{len(HOSTILE) * len(sample)} hostile insertions: {missed} missed")
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--hostile-files", type=int, default=100)
    parser.add_argument("--site", type=Path, default=Path(sysconfig.get_paths()["purelib"]))
    args = parser.parse_args()
    honest(_sample(args.site, args.files, seed=7))
    sys.exit(1 if hostile(_sample(args.site, args.hostile_files, seed=11)) else 0)


if __name__ == "__main__":
    main()
