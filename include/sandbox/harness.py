#!/usr/bin/env python3
"""triloop-harness: the sandbox image's entrypoint (standard library only).

Runs inside the locked-down container with /workspace (the checkout) and /out (results).
The control plane reads the files written to /out; the last stdout line is a compact JSON
summary for the Airflow log. Exit codes: 0 ran (scan/check may still report findings or
failures; fix changed or found nothing to change), 1 a tool failed or a fix failed, 2 bad
usage or an invalid request.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSION = "1.0.0"
SCHEMA_VERSION = 1
WORKSPACE = Path(os.environ.get("TRILOOP_WORKSPACE", "/workspace"))
RULES = os.environ.get("TRILOOP_SEMGREP_RULES", "/opt/triloop/semgrep")
SEMGREP = ["semgrep", "scan", "--config", RULES, "--json", "--metrics=off"]
SEMGREP += ["--disable-version-check", "--quiet", "."]
RUFF_RULE = re.compile(r"^[A-Z]{1,4}[0-9]{1,4}$")
HARNESSES = ("autofix",)
log = logging.getLogger("triloop-harness")


class HarnessError(Exception):
    """Bad usage, an invalid request or a broken environment (exit code 2)."""


@dataclass
class Run:
    argv: list[str]
    exit_code: int
    duration_s: float
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def meta(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "argv": self.argv, "duration_s": self.duration_s}

    def tail(self, extra: str = "", lines: int = 60, chars: int = 4000) -> str:
        out = extra + self.text + self.stderr.decode("utf-8", "replace")
        return "\n".join(out.strip().splitlines()[-lines:])[-chars:]


def tool_env() -> dict[str, str]:
    """Tool environment: writable HOME/XDG in /tmp, git trusts the mount, no phoning home."""
    env = dict(os.environ, HOME=os.environ.get("HOME") or "/tmp", PYTHONDONTWRITEBYTECODE="1")
    env.update(SEMGREP_SEND_METRICS="off", SEMGREP_ENABLE_VERSION_CHECK="0", GIT_CONFIG_COUNT="1")
    env.update(GIT_CONFIG_KEY_0="safe.directory", GIT_CONFIG_VALUE_0="*", GIT_TERMINAL_PROMPT="0")
    for key, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache")):
        env.setdefault(key, os.path.join(env["HOME"], sub))
        os.makedirs(env[key], exist_ok=True)
    return env


def run(argv: list[str]) -> Run:
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=WORKSPACE, env=tool_env(), capture_output=True, check=False)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except OSError as exc:  # a missing tool is a tool error (127, like a shell), not a crash
        code, stdout, stderr = 127, b"", f"cannot run {argv[0]!r}: {exc}".encode()
    result = Run(argv, code, round(time.monotonic() - start, 3), stdout, stderr)
    log.info("%s: exit %s in %.1fs", shlex.join(argv), result.exit_code, result.duration_s)
    return result


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def cmd_scan(out: Path) -> tuple[int, dict[str, Any]]:
    ruff = run(["ruff", "check", "--output-format", "json", "--exit-zero", "--no-cache", "."])
    (out / "ruff.json").write_bytes(ruff.stdout)
    semgrep = run(SEMGREP)
    (out / "semgrep.json").write_bytes(semgrep.stdout)
    tools = {"ruff": ruff.meta(), "semgrep": semgrep.meta()}
    write_json(
        out / "result.json", {"schema_version": SCHEMA_VERSION, "command": "scan", "tools": tools}
    )
    counts: dict[str, int] = {}
    errors = []
    for name, tool, bad in (
        ("ruff", ruff, ruff.exit_code != 0),
        ("semgrep", semgrep, semgrep.exit_code > 1),
    ):
        parsed = _loads(tool.stdout)
        found = parsed.get("results") if isinstance(parsed, dict) else parsed
        if bad or not isinstance(found, list):
            errors.append(f"{name} failed (exit {tool.exit_code}): {tool.tail(lines=20)}")
        counts[name] = len(found) if isinstance(found, list) else -1
    for message in errors:
        log.error("%s", message)
    return (1 if errors else 0), {"command": "scan", "ok": not errors, "findings": counts}


def load_request(path: Path) -> tuple[str, str, list[str]]:
    try:
        req = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"invalid request {path}: {exc}") from exc
    if not isinstance(req, dict):
        raise HarnessError("invalid request: top level must be a JSON object")

    def bad(field: str, why: str) -> HarnessError:
        return HarnessError(f"invalid request: field {field!r} {why}")

    if req.get("schema_version") != SCHEMA_VERSION:
        raise bad("schema_version", f"must be {SCHEMA_VERSION}, got {req.get('schema_version')!r}")
    if req.get("harness") not in HARNESSES:
        raise bad("harness", f"must be one of {list(HARNESSES)}, got {req.get('harness')!r}")
    ticket, rule, paths = req.get("ticket_id"), req.get("rule"), req.get("paths")
    if not isinstance(ticket, str) or not ticket.strip() or len(ticket) > 200:
        raise bad("ticket_id", "must be a non-empty string of at most 200 characters")
    if not isinstance(rule, str) or not RUFF_RULE.match(rule):
        raise bad("rule", f"must be a ruff rule code like 'F401', got {rule!r}")
    if not isinstance(paths, list) or not paths:
        raise bad("paths", "must be a non-empty list of relative paths")
    root = WORKSPACE.resolve()
    for i, item in enumerate(paths):
        field = f"paths[{i}]"
        if not isinstance(item, str) or not item or "\x00" in item or item.startswith("-"):
            raise bad(field, f"must be a plain relative path, got {item!r}")
        if os.path.isabs(item) or ".." in Path(item).parts:
            raise bad(field, f"must be relative without '..', got {item!r}")
        real = (root / item).resolve()
        if not real.is_relative_to(root) or not real.exists():
            raise bad(field, f"must exist inside the workspace, got {item!r}")
    return ticket, rule, paths


def cmd_fix(request: Path, out: Path) -> tuple[int, dict[str, Any]]:
    start = time.monotonic()
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "command": "fix",
        "harness": "autofix",
    }
    result.update(ticket_id=None, files_changed=[], exit_code=-1, tokens=0, cost_usd=0.0)
    try:
        ticket, rule, paths = load_request(request)
    except HarnessError as exc:
        result.update(status="failed", summary=str(exc), duration_s=0.0)
        write_json(out / "result.json", result)
        raise
    result["ticket_id"] = ticket
    ruff = run(["ruff", "check", "--fix", "--no-cache", "--select", rule, "--", *paths])
    git = ["git", "-c", "safe.directory=*", "diff", "--no-ext-diff", "--no-textconv"]
    diff = run([*git, "--binary", "--src-prefix=a/", "--dst-prefix=b/", "HEAD", "--"])
    names = run([*git, "--name-only", "-z", "HEAD", "--"])
    (out / "patch.diff").write_bytes(diff.stdout if diff.exit_code == 0 else b"")
    changed = sorted(n for n in names.text.split("\x00") if n) if names.exit_code == 0 else []
    if ruff.exit_code > 1:
        status, summary = "failed", f"ruff exited {ruff.exit_code}: {ruff.tail(lines=5)}"
    elif diff.exit_code != 0 or names.exit_code != 0:
        status, summary = "failed", f"git diff failed: {diff.tail(lines=5)}"
    elif changed:
        status, summary = "changed", f"ruff --fix --select {rule} changed {len(changed)} file(s)"
    else:
        status, summary = "no_change", f"ruff --fix --select {rule} found nothing to fix"
    result.update(status=status, summary=summary, files_changed=changed, exit_code=ruff.exit_code)
    result["duration_s"] = round(time.monotonic() - start, 3)
    write_json(out / "result.json", result)
    return (1 if status == "failed" else 0), {
        "command": "fix",
        "ticket_id": ticket,
        "status": status,
    }


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def check_tests(out: Path) -> dict[str, Any]:
    junit = out / "junit.xml"
    r = run(["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"])
    # pytest's short summary (on by default, -rfE) names each failure: "FAILED node::id - msg".
    summary = [ln for ln in r.text.splitlines() if ln.startswith(("FAILED ", "ERROR "))]
    failing = [ln.split(" ", 1)[1].split(" - ", 1)[0] for ln in summary] if r.exit_code else []
    if r.exit_code == 1 and not failing:
        failing = _junit_failures(junit)
    status = {0: "passed", 5: "passed", 1: "failed"}.get(r.exit_code, "error")
    note = "note: no tests collected (pytest exit 5) counts as passed\n" if r.exit_code == 5 else ""
    return {**_check("tests", r, status, r.tail(note)), "rule_ids": failing}


def _junit_failures(junit: Path) -> list[str]:
    """Fallback when the summary was switched off: classname::name of failed junit cases."""
    try:
        cases = ElementTree.parse(junit).iter("testcase")
    except (OSError, ElementTree.ParseError):
        return []
    bad = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    return [f"{c.get('classname', '')}::{c.get('name', '')}" for c in bad]


def check_ruff() -> dict[str, Any]:
    r = run(["ruff", "check", "--output-format", "json", "--no-cache", "."])
    found = _loads(r.stdout)
    if r.exit_code > 1 or not isinstance(found, list):
        return {**_check("ruff", r, "error", r.tail()), "rule_ids": []}
    lines = [
        f"{os.path.relpath(f['filename'], WORKSPACE)}:{f['location']['row']}: "
        f"{f['code']} {f['message']}"
        for f in found
    ]
    excerpt = "\n".join(lines[-60:])[-4000:]
    status = "failed" if found else "passed"
    return {
        **_check("ruff", r, status, excerpt),
        "rule_ids": sorted({str(f["code"]) for f in found}),
    }


def check_semgrep() -> dict[str, Any]:
    r = run(SEMGREP)
    found = (_loads(r.stdout) or {}).get("results")
    if r.exit_code > 1 or not isinstance(found, list):
        return {**_check("semgrep", r, "error", r.tail()), "rule_ids": []}
    prefix = RULES.strip("/").replace("/", ".") + "."
    ids = [str(f["check_id"]).removeprefix(prefix) for f in found]
    lines = [
        f"{f['path']}:{f['start']['line']}: {i} {f['extra']['message']}"
        for f, i in zip(found, ids, strict=True)
    ]
    status = "failed" if found else "passed"
    return {
        **_check("semgrep", r, status, "\n".join(lines[-60:])[-4000:]),
        "rule_ids": sorted(set(ids)),
    }


def _check(check_id: str, r: Run, status: str, excerpt: str) -> dict[str, Any]:
    command = shlex.join(r.argv)
    return {
        "check_id": check_id,
        "status": status,
        "command": command,
        "exit_code": r.exit_code,
        "duration_s": r.duration_s,
        "excerpt": excerpt,
    }


def cmd_check(out: Path) -> tuple[int, dict[str, Any]]:
    checks = [check_tests(out), check_ruff(), check_semgrep()]
    write_json(out / "checks.json", {"schema_version": SCHEMA_VERSION, "checks": checks})
    return 0, {"command": "check", "checks": {c["check_id"]: c["status"] for c in checks}}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="triloop-harness: %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="triloop-harness", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"triloop-harness {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("scan", "fix", "check"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--out", type=Path, required=True, help="output directory (mounted /out)")
        if name == "fix":
            cmd.add_argument("--request", type=Path, required=True, help="request JSON file")
    args = parser.parse_args(argv)
    summary: dict[str, Any] = {"command": args.command}
    try:
        if not args.out.is_dir() or not os.access(args.out, os.W_OK):
            raise HarnessError(f"output directory {args.out} is missing or not writable")
        if not (WORKSPACE / ".git").exists():
            raise HarnessError(f"{WORKSPACE} is not a git checkout (no .git)")
        if args.command == "scan":
            code, summary = cmd_scan(args.out)
        elif args.command == "fix":
            code, summary = cmd_fix(args.request, args.out)
        else:
            code, summary = cmd_check(args.out)
    except HarnessError as exc:
        log.error("%s", exc)
        code, summary = 2, {**summary, "ok": False, "error": str(exc)}
    sys.stderr.flush()
    sys.stdout.write(json.dumps({**summary, "exit_code": code}, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
