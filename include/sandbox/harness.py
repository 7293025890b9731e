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
import contextlib
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
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


def run(argv: list[str], cwd: Path | None = None) -> Run:
    start = time.monotonic()
    try:
        proc = subprocess.run(
            argv, cwd=cwd or WORKSPACE, env=tool_env(), capture_output=True, check=False
        )
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except OSError as exc:  # a missing tool is a tool error (127, like a shell), not a crash
        code, stdout, stderr = 127, b"", f"cannot run {argv[0]!r}: {exc}".encode()
    result = Run(argv, code, round(time.monotonic() - start, 3), stdout, stderr)
    log.info("%s: exit %s in %.1fs", shlex.join(argv), result.exit_code, result.duration_s)
    return result


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def scan_ruff_argv(out: Path) -> list[str]:
    """Discovery's ruff: the repository's own configuration as ruff finds it, or the policy's
    rule set the host wrote to /out/analysis/ruff.toml when it has none; never a fix."""
    argv = ["ruff", "check", "--output-format", "json", "--exit-zero", "--no-cache", "--no-fix"]
    default = out / "analysis" / "ruff.toml"
    return [*argv, *(["--config", str(default)] if default.is_file() else []), "."]


def cmd_scan(out: Path) -> tuple[int, dict[str, Any]]:
    ruff = run(scan_ruff_argv(out))
    (out / "ruff.json").write_bytes(ruff.stdout)
    semgrep = run(SEMGREP)
    (out / "semgrep.json").write_bytes(semgrep.stdout)
    tools = {"ruff": ruff.meta(), "semgrep": semgrep.meta()}
    counts: dict[str, int] = {}
    errors = []
    for name, tool, bad in (
        ("ruff", ruff, ruff.exit_code != 0),
        ("semgrep", semgrep, semgrep.exit_code > 1),
    ):
        parsed = _loads(tool.stdout)
        found = parsed.get("results") if isinstance(parsed, dict) else parsed
        if bad or not isinstance(found, list):
            message = f"{name} failed (exit {tool.exit_code}): {tool.tail(lines=20)}"
            tools[name]["error"] = message
            errors.append(message)
        counts[name] = len(found) if isinstance(found, list) else -1
    # Tests, coverage and licenses (code_scan.py beside this file, in the image too).
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from code_scan import scan_code

    for name, status in scan_code(out, WORKSPACE, tool_env()).items():
        tools[name] = status
        if status.get("error"):
            errors.append(f"{name}: {status['error']}")
    write_json(
        out / "result.json", {"schema_version": SCHEMA_VERSION, "command": "scan", "tools": tools}
    )
    for message in errors:
        log.error("%s", message)
    # Exit 0 once result.json says how each tool did: a failed tool costs only its own
    # findings (discovery records it), the others' findings still land.
    return 0, {"command": "scan", "ok": not errors, "findings": counts}


def cmd_analyze(out: Path) -> tuple[int, dict[str, Any]]:
    """Governance's analyzers on one tree, with no repository code running (see analyze.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from analyze import ruff_argv, run_secrets, run_semgrep
    from code_scan import licenses_and_sbom

    ruff = run(ruff_argv(out))
    (out / "ruff.json").write_bytes(ruff.stdout)
    semgrep_meta = run_semgrep(WORKSPACE, tool_env(), RULES)
    semgrep = Run(
        semgrep_meta["argv"],
        semgrep_meta["exit_code"],
        semgrep_meta.get("duration_s", 0.0),
        semgrep_meta.pop("stdout", b""),
        semgrep_meta.pop("stderr", b"") + str(semgrep_meta.get("error", "")).encode(),
    )
    (out / "semgrep.json").write_bytes(semgrep.stdout)
    tools: dict[str, Any] = {"ruff": ruff.meta(), "semgrep": semgrep.meta()}
    tools["semgrep"]["left_out"] = semgrep_meta.get("left_out", [])
    errors = []
    for name, tool, bad in (
        ("ruff", ruff, ruff.exit_code != 0),
        ("semgrep", semgrep, semgrep.exit_code > 1 or semgrep.exit_code < 0),
    ):
        parsed = _loads(tool.stdout)
        found = parsed.get("results") if isinstance(parsed, dict) else parsed
        if bad or not isinstance(found, list):
            message = f"{name} failed (exit {tool.exit_code}): {tool.tail(lines=20)}"
            tools[name]["error"] = message
            errors.append(message)
    tools["secrets"] = run_secrets(WORKSPACE, out)
    tools.update(licenses_and_sbom(out, WORKSPACE, tool_env()))
    errors += [
        f"{n}: {t['error']}"
        for n, t in tools.items()
        if n not in ("ruff", "semgrep") and t.get("error")
    ]
    write_json(
        out / "result.json",
        {"schema_version": SCHEMA_VERSION, "command": "analyze", "tools": tools},
    )
    for message in errors:
        log.error("%s", message)
    return 0, {"command": "analyze", "ok": not errors}


def cmd_test(out: Path) -> tuple[int, dict[str, Any]]:
    """The repository's tests alone (the analyzers run elsewhere): checks.json, the report."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from code_scan import add_toolchain, install_dependencies

    state, status = install_dependencies(out, WORKSPACE, tool_env())
    python = add_toolchain() if state == "installed" else sys.executable
    note = f"dependencies not installed: {status['error']}\n" if state == "broken" else ""
    entry = _guarded("tests", lambda: check_tests(out, python, note))
    write_json(out / "checks.json", {"schema_version": SCHEMA_VERSION, "checks": [entry]})
    return 0, {"command": "test", "checks": {"tests": entry["status"]}}


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


AGENT_OUTPUT_CAP = int(os.environ.get("TRILOOP_AGENT_OUTPUT_CAP", str(8 << 20)))
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
# Passed through from the container: locale, certificates and the egress proxy's address.
BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "HTTPS_PROXY", "HTTP_PROXY")
PROXY_ENV = ("NO_PROXY", "https_proxy", "http_proxy", "no_proxy")
KILL_GRACE_S = 5.0


def load_agent_request(path: Path) -> dict[str, Any]:
    """The agent request document, checked field by field (HarnessError names the field)."""
    try:
        req = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"invalid request {path}: {exc}") from exc
    if not isinstance(req, dict) or req.get("schema_version") != SCHEMA_VERSION:
        raise HarnessError(
            f"invalid request: must be an object with schema_version {SCHEMA_VERSION}"
        )
    checks: dict[str, Any] = {
        "harness": lambda v: isinstance(v, str) and re.fullmatch(r"[a-z][a-z0-9-]{0,63}", v),
        "ticket_id": lambda v: isinstance(v, str) and 0 < len(v) <= 200,
        "argv": lambda v: isinstance(v, list) and v and all(isinstance(a, str) for a in v),
        "env": lambda v: (
            isinstance(v, dict)
            and all(ENV_NAME.match(k) and isinstance(x, str) for k, x in v.items())
        ),
        "pass_env": lambda v: isinstance(v, list) and all(ENV_NAME.match(str(n)) for n in v),
        "prompt": lambda v: isinstance(v, str) and v.strip(),
        "runtime_limit_s": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
    }
    for field, ok in checks.items():
        if not ok(req.get(field)):
            raise HarnessError(f"invalid request: field {field!r} is missing or malformed")
    if req.setdefault("mode", "fix") not in ("fix", "review"):
        raise HarnessError("invalid request: field 'mode' must be 'fix' or 'review'")
    exclude = req.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(g, str) and g for g in exclude):
        raise HarnessError("invalid request: field 'exclude' must be a list of globs")
    return req


def agent_env(req: dict[str, Any]) -> dict[str, str]:
    """Only what the agent needs: a base, the request's safe values, its named secrets."""
    env = {k: os.environ[k] for k in (*BASE_ENV, *PROXY_ENV) if k in os.environ}
    env.update(HOME="/tmp", TMPDIR="/tmp", XDG_CONFIG_HOME="/tmp/.config", GIT_TERMINAL_PROMPT="0")
    env.update(XDG_CACHE_HOME="/tmp/.cache", XDG_DATA_HOME="/tmp/.local/share")
    env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="safe.directory", GIT_CONFIG_VALUE_0="*")
    env.update(req["env"])
    env.update({n: os.environ[n] for n in req["pass_env"] if n in os.environ})
    for key in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        os.makedirs(env[key], exist_ok=True)
    return env


def _drain(stream: Any, target: Path, cap: int) -> None:
    """Copy ``stream`` to ``target`` up to ``cap`` bytes; read (and drop) the rest."""
    written = 0
    with target.open("wb") as fh:
        for chunk in iter(lambda: stream.read(65536), b""):
            if written < cap:
                fh.write(chunk[: cap - written])
                if written + len(chunk) > cap:
                    fh.write(b"\n[triloop: output capped]\n")
                written += len(chunk)


def run_agent(req: dict[str, Any], out: Path) -> tuple[int, float, bool]:
    """Run the CLI in its own process group; kill the group at the runtime limit."""
    prompt_file = Path(tempfile.mkdtemp(prefix="triloop-agent-")) / "prompt.md"
    prompt_file.write_text(req["prompt"], encoding="utf-8")
    swap = {"{prompt}": req["prompt"], "{prompt_file}": str(prompt_file)}
    argv = [swap.get(arg, arg) for arg in req["argv"]]
    start = time.monotonic()
    stdin: Any = prompt_file.open("rb") if req.get("stdin_prompt") else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            argv,
            cwd=WORKSPACE,
            env=agent_env(req),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        (out / "agent.stderr").write_text(f"cannot run {argv[0]!r}: {exc}\n")
        (out / "agent.stdout").write_bytes(b"")
        return 127, round(time.monotonic() - start, 3), False
    finally:
        if stdin is not subprocess.DEVNULL:
            stdin.close()
    pumps = [
        threading.Thread(target=_drain, args=(stream, out / f"agent.{name}", AGENT_OUTPUT_CAP))
        for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    for pump in pumps:
        pump.start()
    timed_out = False
    try:
        proc.wait(timeout=req["runtime_limit_s"])
    except subprocess.TimeoutExpired:
        timed_out = True
        log.error(
            "agent %s overran %ss: killing its process group", argv[0], req["runtime_limit_s"]
        )
        for sig, grace in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children the CLI left running hold the pipes
    for pump in pumps:
        pump.join(timeout=10)
    return proc.returncode, round(time.monotonic() - start, 3), timed_out


def workspace_diff(base: str, exclude: list[str]) -> tuple[Run, list[str]]:
    """The working tree against ``base``, new files included, through a throwaway index."""
    index = Path(tempfile.mkdtemp(prefix="triloop-index-")) / "index"
    git = ["git", "-c", "safe.directory=*", "-c", "core.hooksPath=/dev/null"]
    spec = ["--", ".", *(f":(exclude,glob){g}" for g in exclude)]
    os.environ["GIT_INDEX_FILE"] = str(index)
    try:
        run([*git, "read-tree", base])
        run([*git, "add", "-A", *spec])
        diff_args = ["diff", "--cached", "--no-ext-diff", "--no-textconv", "--binary"]
        diff = run([*git, *diff_args, "--src-prefix=a/", "--dst-prefix=b/", base, *spec])
        names = run([*git, "diff", "--cached", "--name-only", "-z", base, *spec])
    finally:
        del os.environ["GIT_INDEX_FILE"]
    changed = sorted(n for n in names.text.split("\x00") if n) if names.exit_code == 0 else []
    return diff, changed


def proxy_budget_stop(out: Path) -> str:
    """Why the egress proxy refused the agent's model calls over its token budget, else ''.

    The proxy writes ``/out/egress/usage.json`` (read-only in here); its ``over_budget``
    names the limit it enforced and ``refused`` the answers it gave instead of the model's.
    """
    try:
        meter = json.loads((out / "egress" / "usage.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if not isinstance(meter, dict) or meter.get("over_budget") != "tokens":
        return ""
    refused = meter.get("refused")
    refusals = refused if isinstance(refused, list) else []
    reasons = [str(r["reason"]) for r in refusals if isinstance(r, dict) and r.get("reason")]
    return reasons[-1] if reasons else f"token budget spent ({meter.get('tokens')} used)"


def cmd_agent(request: Path, out: Path) -> tuple[int, dict[str, Any]]:
    result: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "command": "agent"}
    result.update(harness="agent", ticket_id="unknown", files_changed=[], exit_code=-1)
    result.update(tokens=0, cost_usd=0.0, over_budget="", duration_s=0.0)
    try:
        req = load_agent_request(request)
    except HarnessError as exc:
        write_json(out / "result.json", {**result, "status": "failed", "summary": str(exc)})
        raise
    result.update(harness=req["harness"], ticket_id=req["ticket_id"])
    head = run(["git", "-c", "safe.directory=*", "rev-parse", "HEAD"])
    if head.exit_code != 0:
        raise HarnessError(f"{WORKSPACE} has no HEAD commit: {head.tail(lines=3)}")
    review = req["mode"] == "review"
    before = tree_state()[1] if review else set()
    code, duration, timed_out = run_agent(req, out)
    if review:  # read-only mount: no patch, only a check that nothing changed
        diff, after = tree_state()
        changed = sorted(after - before)
    else:
        diff, changed = workspace_diff(head.text.strip(), req.get("exclude", []))
    (out / "patch.diff").write_bytes(diff.stdout if diff.exit_code == 0 and not review else b"")
    limit = req["runtime_limit_s"]
    refused = proxy_budget_stop(out)
    if timed_out:
        status, summary = "over_budget", f"{req['argv'][0]} killed at the {limit}s runtime limit"
        result["over_budget"] = "runtime_s"
    elif refused:
        # Not a failure to retry: a retried task would spend the same budget a second time.
        status, summary = "over_budget", f"the egress proxy stopped {req['argv'][0]}: {refused}"
        result["over_budget"] = "tokens"
    elif diff.exit_code != 0:
        status, summary = "failed", f"git diff failed: {diff.tail(lines=5)}"
    elif code != 0:
        tail = (out / "agent.stderr").read_bytes()[-600:].decode("utf-8", "replace").strip()
        status, summary = "failed", f"{req['argv'][0]} exited {code}: {tail}"
    elif changed and review:
        status, summary = "failed", f"the reviewer changed the repository: {changed[:20]}"
    elif changed:
        status, summary = "changed", f"{req['argv'][0]} changed {len(changed)} file(s)"
    else:
        status, summary = "no_change", f"{req['argv'][0]} made no change"
    result.update(status=status, summary=summary, files_changed=changed, exit_code=code)
    result["duration_s"] = duration
    write_json(out / "result.json", result)
    # A review's result.json says how it went; governance makes a failed one an error check
    # on that pull request, so the task itself succeeds and the decision still runs.
    failed = status == "failed" and not review
    return (1 if failed else 0), {"command": "agent", "status": status}


def tree_state() -> tuple[Run, set[str]]:
    """HEAD and every changed or untracked path (``git status``), to compare before and after."""
    git = ["git", "-c", "safe.directory=*", "-c", "core.hooksPath=/dev/null"]
    head = run([*git, "rev-parse", "HEAD"])
    status = run([*git, "status", "--porcelain=v1", "-z", "--untracked-files=all"])
    state = {f"HEAD {head.text.strip()}"} | {e for e in status.text.split("\x00") if e}
    return (status if head.exit_code == 0 else head), state


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


CHECK_REQUEST = "check-request.json"
PYTEST_VALUE_OPTIONS = ("-m", "-k", "--deselect", "--ignore", "--ignore-glob")
PYTEST_PATH_OPTIONS = ("--deselect", "--ignore", "--ignore-glob")


def load_check_request(out: Path) -> tuple[str, list[str]]:
    """The suite name and extra pytest args the host asked for; none without a request file.

    The host validated them against the policy (``test_suites``); this checks them again, so
    a request from anywhere else cannot load plugins or configuration from outside the repo.
    """
    path = out / CHECK_REQUEST
    if not path.exists():
        return "", []
    try:
        req = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"invalid check request {path}: {exc}") from exc
    if not isinstance(req, dict) or req.get("schema_version") != SCHEMA_VERSION:
        raise HarnessError(f"invalid check request: needs schema_version {SCHEMA_VERSION}")
    suite, args = req.get("suite", ""), req.get("pytest_args", [])
    if not isinstance(suite, str) or not re.fullmatch(r"[a-z][a-z-]{0,31}", suite):
        raise HarnessError(f"invalid check request: field 'suite' is malformed: {suite!r}")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise HarnessError("invalid check request: field 'pytest_args' must be a list of strings")
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in PYTEST_VALUE_OPTIONS and not eq:
            i += 1
            value = args[i] if i < len(args) else ""
        if name in PYTEST_VALUE_OPTIONS and value.strip() and "\x00" not in value:
            bad = name in PYTEST_PATH_OPTIONS and _outside(value)
        else:
            bad = name.startswith("-") or _outside(name)
        if bad:
            raise HarnessError(f"invalid check request: pytest argument {arg!r} not allowed")
        i += 1
    return suite, args


def _outside(value: str) -> bool:
    """Not a plain repository-relative path or node id."""
    path = value.split("::", 1)[0]
    parts = Path(path).parts
    return (
        not path
        or value.startswith(("-", "@"))
        or os.path.isabs(path)
        or ".." in parts
        or any(c in path for c in "\x00\n\\:")
    )


RUNNER = str(Path(__file__).resolve().parent / "triloop_pytest.py")
REPORT = "tests-report.json"


def check_tests(out: Path, python: str = sys.executable, note: str = "") -> dict[str, Any]:
    """pytest through triloop_pytest.py: checks.json's ``tests`` entry, tests-report.json."""
    junit = out / "junit.xml"
    try:
        suite, extra = load_check_request(out)
    except HarnessError as exc:
        log.error("%s", exc)
        refused = Run(["python", "-m", "pytest"], 2, 0.0, b"", str(exc).encode())
        return {**_check("tests", refused, "error", str(exc)), "rule_ids": []}
    (out / REPORT).unlink(missing_ok=True)
    argv = [python, RUNNER, str(out / REPORT), "--", "-q", "-p", "no:cacheprovider"]
    r = run([*argv, f"--junitxml={junit}", *extra])
    selection = f"{suite} suite: {shlex.join(extra) or 'the whole suite'}\n" if suite else ""
    # pytest's short summary (on by default, -rfE) names each failure: "FAILED node::id - msg".
    summary = [ln for ln in r.text.splitlines() if ln.startswith(("FAILED ", "ERROR "))]
    failing = [ln.split(" ", 1)[1].split(" - ", 1)[0] for ln in summary] if r.exit_code else []
    if r.exit_code == 1 and not failing:
        failing = _junit_failures(junit)
    status = {0: "passed", 5: "passed", 1: "failed"}.get(r.exit_code, "error")
    if r.exit_code == 5:  # governance makes it an error when the base has tests
        note += "note: no tests collected (pytest exit 5)\n"
    excerpt = selection + r.tail(note, chars=4000 - len(selection))  # the selection stays
    entry = {**_check("tests", r, status, excerpt), "rule_ids": failing}
    return {**entry, "suite": suite, "pytest_args": extra}


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


def _guarded(check_id: str, check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One check; if its own code raises, an ``error`` entry naming it (the others still run)."""
    try:
        return check()
    except Exception as exc:  # a crashing check is evidence, not a crashed harness
        log.exception("check %s crashed", check_id)
        crashed = Run(["triloop-harness", "check"], -1, 0.0, b"", repr(exc).encode())
        return {
            **_check(check_id, crashed, "error", f"{check_id} crashed: {exc!r}"),
            "rule_ids": [],
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
    checks = [
        _guarded("tests", lambda: check_tests(out)),
        _guarded("ruff", check_ruff),
        _guarded("semgrep", check_semgrep),
    ]
    write_json(out / "checks.json", {"schema_version": SCHEMA_VERSION, "checks": checks})
    return 0, {"command": "check", "checks": {c["check_id"]: c["status"] for c in checks}}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="triloop-harness: %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="triloop-harness", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"triloop-harness {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("scan", "fix", "check", "agent", "analyze", "test"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--out", type=Path, required=True, help="output directory (mounted /out)")
        if name in ("fix", "agent"):
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
        elif args.command == "agent":
            code, summary = cmd_agent(args.request, args.out)
        elif args.command == "analyze":
            code, summary = cmd_analyze(args.out)
        elif args.command == "test":
            code, summary = cmd_test(args.out)
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
