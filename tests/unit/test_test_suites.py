"""Policy ``test_suites``: a safe subset of pytest arguments, on the host and in the sandbox.

The host validates the policy (a clear error naming the field and the option) and writes the
chosen suite into the check's output directory; the sandbox's ``check`` reads it again with its
own (standard library) validation and passes the arguments to pytest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from triloop.domain.policy import PolicyError, load_policy
from triloop.domain.test_suite_policy import TestSuitePolicy, unsafe_pytest_args
from triloop.governance.test_selection import write_check_request

from tests.unit.test_agent_budget_stop import harness_module

ROOT = Path(__file__).resolve().parents[2]

SAFE = [
    [],
    ["-m", "not slow"],
    ["-k", "pricing and not flaky"],
    ["--deselect", "tests/test_models.py::test_add[1-2]"],
    ["--deselect=tests/test_models.py::test_add", "--ignore=tests/slow"],
    ["--ignore-glob", "tests/**/test_big_*.py", "tests/unit", "tests/test_x.py::test_y"],
]
UNSAFE = [
    (["-p", "evil_plugin"], "option '-p' is not allowed"),
    (["-pevil"], "option '-pevil' is not allowed"),
    (["--rootdir=/tmp"], "option '--rootdir=/tmp' is not allowed"),
    (["-c", "/etc/pytest.ini"], "option '-c' is not allowed"),
    (["--confcutdir", "/"], "option '--confcutdir' is not allowed"),
    (["--pyargs", "os"], "option '--pyargs' is not allowed"),
    (["-o", "addopts=-p evil"], "option '-o' is not allowed"),
    (["--override-ini=addopts=-p x"], "option '--override-ini=addopts=-p x' is not allowed"),
    (["@args.txt"], "'@args.txt' must be a repository-relative path"),
    (["/etc/passwd"], "'/etc/passwd' must stay inside the repository"),
    (["../other/tests"], "'../other/tests' must stay inside the repository"),
    (["--ignore", "../x"], "--ignore value '../x' must stay inside the repository"),
    (["--deselect=/abs::t"], "--deselect value '/abs::t' must stay inside the repository"),
    (["-m"], "option '-m' needs a value"),
    (["-k", " "], "option '-k' has an empty or malformed value"),
    (["tests\x00x"], "holds a NUL or newline"),
    (["tests"] * 65, "at most 64 arguments"),
]


@pytest.mark.parametrize("args", SAFE)
def test_safe_selections_are_accepted(args: list[str]) -> None:
    assert unsafe_pytest_args(args) is None
    policy = TestSuitePolicy(pre_merge_pytest_args=args, post_merge_pytest_args=args)
    assert policy.args_for("pre-merge") == args == policy.args_for("post-merge")


@pytest.mark.parametrize(("args", "message"), UNSAFE)
@pytest.mark.parametrize("field", ["pre_merge_pytest_args", "post_merge_pytest_args"])
def test_unsafe_options_are_refused_naming_the_field_and_the_option(
    tmp_path: Path, field: str, args: list[str], message: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(json.dumps({"schema_version": 1, "test_suites": {field: args}}))
    with pytest.raises(PolicyError, match=rf"field 'test_suites\.{field}'.*") as caught:
        load_policy(path)
    assert message in str(caught.value)
    assert f"test_suites.{field}: " in str(caught.value)


def test_the_default_policy_runs_the_whole_suite_both_times() -> None:
    policy = load_policy(ROOT / "include" / "policy" / "default.yaml").test_suites
    assert policy.args_for("pre-merge") == [] == policy.args_for("post-merge")


def test_the_request_file_is_what_the_sandbox_reads(tmp_path: Path) -> None:
    policy = TestSuitePolicy(pre_merge_pytest_args=["-m", "not slow"])
    path = write_check_request(tmp_path, policy, "pre-merge")
    assert json.loads(path.read_text()) == {
        "schema_version": 1,
        "suite": "pre-merge",
        "pytest_args": ["-m", "not slow"],
    }
    assert harness_module().load_check_request(tmp_path) == ("pre-merge", ["-m", "not slow"])
    write_check_request(tmp_path, policy, "post-merge")  # a re-run replaces it
    assert harness_module().load_check_request(tmp_path) == ("post-merge", [])


def test_no_request_file_means_the_whole_suite(tmp_path: Path) -> None:
    assert harness_module().load_check_request(tmp_path) == ("", [])


@pytest.mark.parametrize("args", SAFE)
def test_the_sandbox_accepts_what_the_policy_accepts(tmp_path: Path, args: list[str]) -> None:
    _request(tmp_path, {"pytest_args": args})
    assert harness_module().load_check_request(tmp_path) == ("pre-merge", args)


@pytest.mark.parametrize(("args", "message"), UNSAFE[:-3])
def test_the_sandbox_refuses_what_the_policy_refuses(
    tmp_path: Path, args: list[str], message: str
) -> None:
    harness = harness_module()
    _request(tmp_path, {"pytest_args": args})
    with pytest.raises(harness.HarnessError, match=r"pytest argument .* not allowed"):
        harness.load_check_request(tmp_path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"schema_version": 2}, "needs schema_version 1"),
        ({"suite": "pre merge; rm"}, "field 'suite' is malformed"),
        ({"pytest_args": "-m slow"}, "field 'pytest_args' must be a list of strings"),
    ],
)
def test_a_malformed_request_is_an_error_of_the_tests_check(
    tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    harness = harness_module()
    _request(tmp_path, fields)
    with pytest.raises(harness.HarnessError, match=message):
        harness.load_check_request(tmp_path)
    check = harness.check_tests(tmp_path)  # pytest never runs; the check says why
    assert (check["check_id"], check["status"]) == ("tests", "error")
    assert message in check["excerpt"]


def _request(out: Path, fields: dict[str, Any]) -> None:
    request = {"schema_version": 1, "suite": "pre-merge", "pytest_args": [], **fields}
    (out / "check-request.json").write_text(json.dumps(request))
