"""Which tests governance runs before a merge and verification runs after it (``test_suites:``).

A common setup is a fast pre-merge suite (``-m "not slow"``) and the full suite after the
merge. Only a safe subset of pytest's command line is accepted: selecting by marker (``-m``) or
keyword (``-k``), deselecting node ids (``--deselect``), ignoring paths (``--ignore``,
``--ignore-glob``) and paths or node ids inside the repository. Anything that could load code
or configuration from elsewhere (``-p``, ``-c``, ``--rootdir``, ``--confcutdir``,
``--pyargs``, ``-o``, ``@file``...) is refused with the field and the option named.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Suite = Literal["pre-merge", "post-merge"]
VALUE_OPTIONS = ("-m", "-k", "--deselect", "--ignore", "--ignore-glob")
"""The pytest options a suite may use; each takes one value (``-m EXPR`` or ``--ignore=PATH``)."""
PATH_OPTIONS = ("--deselect", "--ignore", "--ignore-glob")
MAX_ARGS = 64
CHECK_REQUEST = "check-request.json"
"""The file the host writes into the check's output directory before the sandbox runs."""


def unsafe_pytest_args(args: list[str]) -> str | None:
    """Why ``args`` is not a safe pytest selection (naming the option), or None when it is."""
    if len(args) > MAX_ARGS:
        return f"at most {MAX_ARGS} arguments, got {len(args)}"
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg or "\x00" in arg or "\n" in arg:
            return f"argument {arg!r} is empty or holds a NUL or newline"
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in VALUE_OPTIONS:
            if not eq:
                if i + 1 >= len(args):
                    return f"option {name!r} needs a value"
                i += 1
                inline = args[i]
            why = _bad_value(name, inline)
            if why:
                return why
        elif arg.startswith("-"):
            allowed = ", ".join(VALUE_OPTIONS)
            return f"option {arg!r} is not allowed (allowed: {allowed}, repository paths)"
        else:
            why = _bad_path(arg, "path or node id")
            if why:
                return why
        i += 1
    return None


def _bad_value(option: str, value: str) -> str | None:
    if not value.strip() or "\x00" in value or "\n" in value:
        return f"option {option!r} has an empty or malformed value {value!r}"
    if option in PATH_OPTIONS:
        return _bad_path(value, f"{option} value")
    return None


def _bad_path(value: str, what: str) -> str | None:
    """A repository-relative path or node id (``tests/test_x.py::test_y``), nothing else."""
    path = value.split("::", 1)[0]
    if value.startswith(("-", "@")) or not path:
        return f"{what} {value!r} must be a repository-relative path (no '-' or '@' prefix)"
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\\" in path or ":" in path:
        return f"{what} {value!r} must stay inside the repository (relative, no '..')"
    return None


class TestSuitePolicy(BaseModel):
    """Extra pytest arguments for the pre-merge check (governance) and post-merge verification."""

    __test__ = False  # not a pytest test class, whatever its name
    model_config = ConfigDict(extra="forbid")
    pre_merge_pytest_args: list[str] = Field(
        default_factory=list,
        description="Extra pytest arguments of governance's tests check on each PR's merged tree"
        ' (e.g. ["-m", "not slow"]); empty: the whole suite',
    )
    post_merge_pytest_args: list[str] = Field(
        default_factory=list,
        description="Extra pytest arguments of post-merge verification at each merge commit;"
        " empty: the whole suite",
    )

    @field_validator("pre_merge_pytest_args", "post_merge_pytest_args")
    @classmethod
    def _safe(cls, value: list[str], info: ValidationInfo) -> list[str]:
        why = unsafe_pytest_args(value)
        if why:
            raise ValueError(f"test_suites.{info.field_name}: {why}")
        return value

    def args_for(self, suite: Suite) -> list[str]:
        return list(
            self.pre_merge_pytest_args if suite == "pre-merge" else self.post_merge_pytest_args
        )

    def request(self, suite: Suite) -> dict[str, object]:
        """The ``check-request.json`` the sandbox's ``check`` reads (schema_version 1)."""
        return {"schema_version": 1, "suite": suite, "pytest_args": self.args_for(suite)}
