"""The sandbox's code scanners (standard library only): tests, coverage and licenses.

``triloop-harness scan`` calls :func:`scan_code` after ruff and semgrep. It runs the
repository's tests with pytest (JUnit XML) under coverage.py and lists the licenses of the
repository's declared dependency set with pip-licenses, then writes that environment's
CycloneDX SBOM (``sbom.cdx.json``, cyclonedx-py; an empty venv's when the repository declares
no dependencies, none when the environment could not be built). The sandbox has no network: the
dependencies come from a wheelhouse the host prepared (``/wheelhouse`` when mounted, else
``/out/wheelhouse``, written by triloop.discovery.wheelhouse): its ``requirements.txt`` is
installed with ``pip --no-index`` into a throwaway venv under /tmp, which the tests use too.
A wheelhouse holding ``error.txt`` instead says why the host could not prepare it.

Every tool's status goes into result.json's ``tools``: exit_code, argv, duration_s, and
``error`` when the tool itself broke (a timeout, a crash, no report) or ``skipped`` with the
reason when there was nothing to run. Failing tests are findings, not errors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("triloop-harness")
DEPS_VENV = Path(tempfile.gettempdir()) / "triloop-deps"
COVERAGE_DATA = Path(tempfile.gettempdir()) / "triloop-coverage" / ".coverage"
TEST_BUDGET_S = float(os.environ.get("TRILOOP_SCAN_TEST_BUDGET_S", "300"))
INSTALL_BUDGET_S = float(os.environ.get("TRILOOP_SCAN_INSTALL_BUDGET_S", "180"))
TOOL_BUDGET_S = 120.0
SBOM = "sbom.cdx.json"
PYTEST_OK = (0, 1, 5)  # passed, some tests failed, no tests collected


def limited(
    argv: list[str], env: dict[str, str], cwd: Path, budget_s: float, name: str = ""
) -> dict[str, Any]:
    """Run ``argv`` in its own process group, killed at ``budget_s``; output to a temp file."""
    start = time.monotonic()
    meta: dict[str, Any] = {"argv": argv, "exit_code": -1}
    with tempfile.TemporaryFile(dir=tempfile.gettempdir()) as sink:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            meta.update(exit_code=127, error=f"cannot run {argv[0]!r}: {exc}", duration_s=0.0)
            return meta
        try:
            meta["exit_code"] = proc.wait(timeout=budget_s)
        except subprocess.TimeoutExpired:
            tool = name or Path(argv[0]).name
            meta["error"] = f"{tool} exceeded its time budget of {budget_s:g}s"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group: children left behind too
        proc.wait()
        sink.seek(0, os.SEEK_END)
        sink.seek(max(0, sink.tell() - 4000))
        meta["output_tail"] = sink.read().decode("utf-8", "replace")
    meta["duration_s"] = round(time.monotonic() - start, 3)
    log.info("%s: exit %s in %.1fs", " ".join(argv[:6]), meta["exit_code"], meta["duration_s"])
    return meta


def _failed(meta: dict[str, Any], why: str) -> dict[str, Any]:
    tail = "\n".join(str(meta.get("output_tail", "")).strip().splitlines()[-15:])
    meta["error"] = meta.get("error") or f"{why} (exit {meta['exit_code']}): {tail}"
    return meta


def _skipped(reason: str) -> dict[str, Any]:
    return {"argv": [], "exit_code": 0, "duration_s": 0.0, "skipped": reason}


def find_wheelhouse(out: Path) -> Path | None:
    for candidate in (Path("/wheelhouse"), out / "wheelhouse"):
        if candidate.is_dir():
            return candidate
    return None


def install_dependencies(
    out: Path, workspace: Path, env: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """The declared dependency set in a throwaway venv: (state, status).

    state: ``broken`` (no usable venv: status has ``error``), ``empty`` (a venv with nothing
    to install: status has ``skipped``) or ``installed`` (status is pip's run). Wheels only,
    ``--no-index``: no build hook of any package runs, and the repository itself is not
    installed, so nothing of the repository's code executes here.
    """
    wheelhouse = find_wheelhouse(out)
    if wheelhouse is not None and (wheelhouse / "error.txt").is_file():
        why = (wheelhouse / "error.txt").read_text(encoding="utf-8", errors="replace")[:2000]
        return "broken", _broken(f"the host could not prepare it: {why.strip()}")
    venv = limited(
        [sys.executable, "-m", "venv", "--without-pip", "--clear", str(DEPS_VENV)],
        env,
        workspace,
        TOOL_BUDGET_S,
    )
    if venv["exit_code"] != 0 or "error" in venv:
        return "broken", _failed(venv, "creating the dependency venv failed")
    if wheelhouse is None:
        return "empty", _skipped("no wheelhouse: the repository declares no dependencies")
    requirements = wheelhouse / "requirements.txt"
    if not requirements.is_file() or not requirements.read_text(encoding="utf-8").strip():
        return "empty", _skipped("the wheelhouse lists no requirements")
    install = [sys.executable, "-m", "pip", "--python", str(DEPS_VENV / "bin" / "python")]
    install += ["install", "--no-index", "--find-links", str(wheelhouse), "--only-binary=:all:"]
    install += ["--no-cache-dir", "-r", str(requirements)]
    installed = limited(install, env, workspace, INSTALL_BUDGET_S, "pip install")
    if installed["exit_code"] != 0 or "error" in installed:
        return "broken", _failed(installed, "installing the dependencies failed")
    return "installed", installed


def dependency_env(
    out: Path, workspace: Path, env: dict[str, str]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(python to run the tests with, the licenses tool's status, the sbom tool's status)."""
    state, status = install_dependencies(out, workspace, env)
    python = DEPS_VENV / "bin" / "python"
    if state == "broken":
        return sys.executable, status, _no_env(status)
    if state == "empty":  # the resulting environment is an empty venv, and that is its SBOM
        return sys.executable, status, make_sbom(out, workspace, python, env)
    argv = ["pip-licenses", "--python", str(python), "--format=json", "--with-system"]
    argv += ["--from=mixed", "--output-file", str(out / "licenses.json")]
    licenses = limited(argv, env, workspace, TOOL_BUDGET_S)
    if licenses["exit_code"] != 0 or "error" in licenses:
        _failed(licenses, "pip-licenses failed")
    elif not isinstance(_load(out / "licenses.json"), list):
        _failed(licenses, "pip-licenses wrote no JSON list")
    sbom = make_sbom(out, workspace, python, env)
    return add_toolchain(), licenses, sbom


def add_toolchain() -> str:
    """Let the dependency venv import the image's pytest and coverage; its python.

    After pip-licenses and the SBOM, which must not list the toolchain.
    """
    site = DEPS_VENV.joinpath("lib", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "site-packages" / "zz-triloop-toolchain.pth").write_text("\n".join(sorted(paths)))
    return str(DEPS_VENV / "bin" / "python")


def licenses_and_sbom(out: Path, workspace: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The analysis's licenses and sbom entries: the environment is built, never imported."""
    _, licenses, sbom = dependency_env(out, workspace, env)
    licenses.pop("output_tail", None)
    sbom.pop("output_tail", None)
    return {"licenses": licenses, "sbom": sbom}


def _broken(error: str) -> dict[str, Any]:
    return {"argv": [], "exit_code": -1, "duration_s": 0.0, "error": error}


def _no_env(failed: dict[str, Any]) -> dict[str, Any]:
    """The sbom status when the dependency environment could not be built."""
    return _broken(f"no environment: {failed['error']}")


def make_sbom(out: Path, workspace: Path, python: Path, env: dict[str, str]) -> dict[str, Any]:
    """``/out/sbom.cdx.json``: the CycloneDX 1.6 JSON SBOM of the venv ``python`` runs in.

    ``--output-reproducible`` leaves out the timestamp and serial number, so the same
    environment gives the same bytes (and sha256) on every run. ``--no-validate``: the tool's
    schema validation of its own output made the step take 2.8 s instead of 0.8 s for an empty
    venv in the image (once each, unloaded machine), on every scan; governance's sbom check reads
    the document on the host and refuses one that is not CycloneDX (governance.sbom.read_sbom).
    """
    report = out / SBOM
    report.unlink(missing_ok=True)
    argv = ["cyclonedx-py", "environment", "--sv", "1.6", "--of", "JSON"]
    argv += ["--output-reproducible", "--no-validate", "-o", str(report), str(python)]
    sbom = limited(argv, env, workspace, TOOL_BUDGET_S)
    if sbom["exit_code"] != 0 or "error" in sbom:
        _failed(sbom, "cyclonedx-py failed")
    elif not isinstance(_load(report), dict):
        _failed(sbom, "cyclonedx-py wrote no JSON document")
    sbom.pop("output_tail", None)
    return sbom


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_tests(
    out: Path, workspace: Path, python: str, env: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """pytest under coverage.py: ``junit.xml`` and ``coverage.json`` in ``out``."""
    junit, report = out / "junit.xml", out / "coverage.json"
    COVERAGE_DATA.parent.mkdir(parents=True, exist_ok=True)
    COVERAGE_DATA.unlink(missing_ok=True)
    test_env = dict(env)
    if (workspace / "src").is_dir():  # a src layout: its packages import without installing
        test_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(workspace / "src"), env.get("PYTHONPATH", "")) if p
        )
    cover = [python, "-m", "coverage", "run", f"--data-file={COVERAGE_DATA}", "--source=."]
    pytest = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--continue-on-collection-errors"]
    pytest += [f"--junitxml={junit}", "-o", "junit_family=xunit1"]
    tests = limited([*cover, *pytest], test_env, workspace, TEST_BUDGET_S, "pytest")
    if "error" not in tests and (tests["exit_code"] not in PYTEST_OK or not junit.is_file()):
        _failed(tests, "pytest did not complete its run")
    tests.pop("output_tail", None)
    if "error" in tests:
        return {"pytest": tests, "coverage": _skipped("the tests did not complete")}
    if tests["exit_code"] == 5:
        return {"pytest": tests, "coverage": _skipped("no tests collected")}
    argv = [python, "-m", "coverage", "json", f"--data-file={COVERAGE_DATA}", "-o", str(report)]
    coverage = limited([*argv, "--ignore-errors"], test_env, workspace, TOOL_BUDGET_S)
    if coverage["exit_code"] != 0 or "error" in coverage or not report.is_file():
        _failed(coverage, "coverage json failed")
    coverage.pop("output_tail", None)
    return {"pytest": tests, "coverage": coverage}


def scan_code(out: Path, workspace: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The licenses, sbom, pytest and coverage entries of result.json's ``tools``."""
    python, licenses, sbom = dependency_env(out, workspace, env)
    licenses.pop("output_tail", None)
    sbom.pop("output_tail", None)
    return {"licenses": licenses, "sbom": sbom, **run_tests(out, workspace, python, env)}
