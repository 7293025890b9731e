"""Result reuse against the real engine: an identical run starts no container, any change does.

Each run writes a random stamp to /out: the same stamp twice means the second run's outputs are
the first's, copied back without a container.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from triloop_sandbox import reuse
from triloop_sandbox.operator import SandboxOperator

from tests.integration.conftest import git, give_to_sandbox

pytestmark = pytest.mark.docker
STAMP = "import uuid, pathlib; pathlib.Path('/out/stamp').write_text(uuid.uuid4().hex)"
FAIL = STAMP + "; raise SystemExit(3)"


@pytest.fixture
def run(
    tmp_path: Path, sandbox_image: str, make_repo: Callable[[dict[str, str]], Path]
) -> Callable[..., tuple[SandboxOperator, str]]:
    """run(code=..., inputs={...}, **operator kwargs) -> (operator, the stamp it left)."""
    repo = make_repo({"app.py": "X = 1\n"})

    def go(
        code: str = STAMP,
        inputs: dict[str, str] | None = None,
        out: Path | None = None,
        **kwargs: Any,
    ) -> Any:
        if out is None:
            out = tmp_path / f"out-{uuid.uuid4().hex[:8]}"
            out.mkdir()
        for name, text in (inputs or {}).items():
            (out / name).write_text(text)
        give_to_sandbox(out)
        op = SandboxOperator(
            **{
                "task_id": "reuse",
                "workspace": str(repo),
                "output_dir": str(out),
                "workspace_root": str(tmp_path),
                "image": sandbox_image,
                "entrypoint": ["python3"],
                "command": ["-c", code],
                "reuse_results": True,
                "wall_clock_limit_s": 120,
                **kwargs,
            }
        )
        try:
            op.execute({"run_id": f"itest-{uuid.uuid4().hex[:12]}"})
        finally:
            stamp = out / "stamp"
            left = stamp.read_text() if stamp.is_file() else ""
        return op, left

    go.repo = repo  # type: ignore[attr-defined]
    return go


def test_an_identical_run_reuses_the_outputs_and_starts_no_container(
    run: Callable[..., tuple[SandboxOperator, str]], tmp_path: Path
) -> None:
    first, stamp = run(inputs={"request.json": "{}"})
    assert first.container is not None and stamp
    again, reused = run(inputs={"request.json": "{}"})
    assert again.container is None, "no container for an identical run"
    assert reused == stamp
    entries = [p for p in (tmp_path / reuse.CACHE_DIR).iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1 and (entries[0] / "stamp").read_text() == stamp
    assert not (entries[0] / "request.json").exists(), "the inputs are keyed, not stored"


@pytest.mark.parametrize(
    "change",
    ["input", "environment", "command", "commit", "dirty", "off", "writable"],
)
def test_any_change_in_what_the_run_sees_runs_it_again(
    run: Callable[..., tuple[SandboxOperator, str]], change: str
) -> None:
    repo: Path = run.repo  # type: ignore[attr-defined]
    _, stamp = run(inputs={"request.json": "{}"}, environment={"A": "1"})
    kwargs: dict[str, Any] = {"inputs": {"request.json": "{}"}, "environment": {"A": "1"}}
    if change == "input":
        kwargs["inputs"] = {"request.json": '{"rule": "F401"}'}
    elif change == "environment":
        kwargs["environment"] = {"A": "2"}
    elif change == "command":
        kwargs["code"] = STAMP + "  # another command"
    elif change == "commit":
        (repo / "app.py").write_text("X = 2\n")
        git(repo, "commit", "-q", "-am", "two")
    elif change == "dirty":
        (repo / "untracked.py").write_text("")
    elif change == "off":
        kwargs["sandbox_resources"] = {"result_reuse_hours": 0}
    elif change == "writable":
        kwargs["workspace_readonly"] = False
    op, again = run(**kwargs)
    assert op.container is not None, f"{change}: the run started a container"
    assert again and again != stamp


def test_a_failed_run_is_not_stored(
    run: Callable[..., tuple[SandboxOperator, str]], tmp_path: Path
) -> None:
    for _ in range(2):  # a reused run would return instead of failing again
        with pytest.raises(Exception, match="exited 3"):
            run(code=FAIL, final_exit_codes=(3,))
    assert not (tmp_path / reuse.CACHE_DIR).exists()


def test_a_reused_output_can_be_overwritten_by_a_rerun(
    run: Callable[..., tuple[SandboxOperator, str]], tmp_path: Path
) -> None:
    """A cleared task runs again into the same output directory: the sandbox user must be able
    to overwrite what reuse copied there (the host wrote it)."""
    _, stamp = run()
    out = tmp_path / "rerun-out"
    out.mkdir()
    give_to_sandbox(out)
    reused, copied = run(out=out)
    assert reused.container is None and copied == stamp
    again, fresh = run(out=out, environment={"RERUN": "1"})  # another key: a real run
    assert again.container is not None and fresh != stamp
