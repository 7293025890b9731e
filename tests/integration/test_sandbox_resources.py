"""A sandbox cannot exhaust the host: disk budgets, log caps and size-checked reads, for real.

Each test prints what it measured (run with ``-s`` to see it); the figures are in the README.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest
from triloop.domain.sandbox_resources import MB, SandboxResources
from triloop.execution.patch import PatchRejected, validate_patch
from triloop_sandbox.exceptions import SandboxDiskBudgetExceeded
from triloop_sandbox.operator import SandboxOperator

pytestmark = pytest.mark.docker

REPO = {"app/__init__.py": "", "app/util.py": "import os\n"}
BUDGET_MB = 128
TEN_GB_IN_FILES = (
    "import os\nchunk = bytes(8 << 20)\nfor i in range(1280):\n"
    "    with open(os.path.join(os.environ['TARGET'], f'f{i:04d}'), 'wb') as f:\n"
    "        f.write(chunk)\n"
)
FLOOD = r"""
import sys
w = sys.stdout.buffer.write
w(b"".join(b"head %d\n" % i for i in range(1000)))
block = (b"x" * 65535 + b"\n") * 16  # 1 GiB in lines of 64 KiB: the engine logs them fast
for _ in range(1024):
    w(block)
w(b"".join(b"tail %d\n" % i for i in range(1000)))
w(b'{"ok": true, "exit_code": 0}\n')
"""


class TaskLog:
    """Stands in for the task's logger: counts the lines and bytes that reach the task log."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.bytes = 0

    def _write(self, message: object, *args: object, **_: object) -> None:
        text = str(message) % args if args else str(message)
        self.bytes += len(text.encode()) + 1
        self.lines.append(text)

    info = warning = error = debug = exception = _write


class Measured(SandboxOperator):
    """Logs to a TaskLog; records the container's log size on the engine's disk just before the
    container is removed."""

    log_file_bytes: int | None = None
    log_api_bytes = 0
    host_config: dict[str, Any] = {}
    task_log: TaskLog

    @property
    def log(self) -> Any:
        return self.task_log

    def _on_exit(self, container_id: str, result: Any) -> None:
        super()._on_exit(container_id, result)
        client = self.hook.api_client
        info = client.inspect_container(container_id)
        self.host_config = info["HostConfig"]
        self.log_api_bytes = len(client.logs(container_id, stdout=True, stderr=True))
        log_path = Path(info["LogPath"])
        if os.access(log_path.parent, os.R_OK):  # the engine's directory: root only
            files = log_path.parent.glob(f"{log_path.name}*")
            self.log_file_bytes = sum(f.stat().st_size for f in files)


@pytest.fixture
def operator_for(
    tmp_path: Path,
    out_dir: Path,
    sandbox_image: str,
    make_repo: Callable[[dict[str, str]], Path],
) -> Callable[..., Measured]:
    repo = make_repo(REPO)

    def build(**kwargs: Any) -> Measured:
        defaults: dict[str, Any] = {
            "task_id": "sandbox_resources",
            "workspace": str(repo),
            "output_dir": str(out_dir),
            "workspace_root": str(tmp_path),
            "image": sandbox_image,
            "wall_clock_limit_s": 120,
        }
        op = Measured(**{**defaults, **kwargs})
        op.task_log = TaskLog()
        return op

    return build


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*")]


@pytest.mark.parametrize(
    ("target", "writer"),
    [
        ("/out", ["python3", "-c", TEN_GB_IN_FILES]),  # 1,280 files of 8 MiB: the watcher
        ("/out", ["dd", "if=/dev/zero", "of=/out/big", "bs=1M", "count=10240"]),  # RLIMIT_FSIZE
        ("/workspace", ["python3", "-c", TEN_GB_IN_FILES]),  # the writable checkout
    ],
    ids=["out-many-files", "out-one-file", "workspace-many-files"],
)
def test_a_sandbox_writing_10_gb_stops_at_its_disk_budget_and_leaves_no_file(
    operator_for: Callable[..., Measured],
    out_dir: Path,
    target: str,
    writer: list[str],
) -> None:
    budgets = {"out_disk_mb": BUDGET_MB, "workspace_disk_mb": BUDGET_MB}
    op = operator_for(
        entrypoint=writer[:1],
        command=writer[1:],
        environment={"TARGET": target},
        workspace_readonly=False,
        sandbox_resources=budgets,
    )
    workspace = Path(op.workspace)
    before = sorted(p.relative_to(workspace) for p in files_under(workspace))
    started = time.monotonic()
    with pytest.raises(
        SandboxDiskBudgetExceeded,
        match=rf"wrote \d+ MB to {target} \(.*\), over its disk budget of {BUDGET_MB} MB"
        rf" \(sandbox_resources\.\w+_disk_mb\); the sandbox was stopped and what it wrote",
    ) as caught:
        op.execute({"run_id": f"itest-{uuid.uuid4().hex[:12]}"})
    took = time.monotonic() - started
    error = caught.value
    assert error.mount == target and error.budget_bytes == BUDGET_MB * MB
    overshoot_mb = (error.seen_bytes - error.budget_bytes) / MB
    watcher = op._disk
    assert watcher is not None
    print(
        f"\n{target} writer {writer[0]}: stopped after {took:.1f}s"
        f" at {error.seen_bytes / MB:.0f} MB"
        f" (budget {BUDGET_MB} MB, overshoot {overshoot_mb:.0f} MB); {watcher.polls} polls,"
        f" {watcher.walks} walks, {watcher.walk_s * 1000:.0f} ms walking"
    )
    assert 0 <= overshoot_mb < 512, "stopped well before 10 GB"
    assert files_under(out_dir) == []
    assert files_under(workspace) == [], "a writable workspace is emptied too"
    assert before, "the checkout was there before the run"


def test_files_the_host_may_not_delete_are_removed_by_a_clean_up_container(
    operator_for: Callable[..., Measured], out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triloop_sandbox import resources

    def host_deletes_nothing(path: str) -> bool:  # a worker that is not root, at worst
        return not any(True for _ in os.scandir(path))

    monkeypatch.setattr(resources, "empty_dir", host_deletes_nothing)
    script = (
        "mkdir -p /out/locked/deep && head -c 1M /dev/zero > /out/locked/deep/small"
        " && chmod 0 /out/locked/deep && chmod 0500 /out/locked"
        " && head -c 300M /dev/zero > /out/big; sleep 60"
    )
    op = operator_for(
        entrypoint=["sh"], command=["-c", script], sandbox_resources={"out_disk_mb": 64}
    )
    with pytest.raises(SandboxDiskBudgetExceeded, match="what it wrote to /out was removed"):
        op.execute({"run_id": f"itest-{uuid.uuid4().hex[:12]}"})
    assert files_under(out_dir) == []


def test_a_1_gb_stdout_flood_leaves_a_bounded_container_log_and_task_log(
    operator_for: Callable[..., Measured],
) -> None:
    limits = SandboxResources(
        container_log_max_mb=1,
        container_log_max_files=2,
        task_log_head_lines=50,
        task_log_tail_lines=50,
        task_log_max_kb=128,
    )
    op = operator_for(entrypoint=["python3"], command=["-c", FLOOD], sandbox_resources=limits)
    task_log = op.task_log
    reset_rss_peak()
    rss_before, started = rss_peak_kb(), time.monotonic()
    last_line = op.execute({"run_id": f"itest-{uuid.uuid4().hex[:12]}"})
    took, rss_growth_kb = time.monotonic() - started, rss_peak_kb() - rss_before
    assert json.loads(last_line) == {"ok": True, "exit_code": 0}, "the summary is still last"
    assert op.host_config["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": "1m", "max-file": "2"},
    }
    dropped = [line for line in task_log.lines if "of sandbox output dropped here" in line]
    assert len(dropped) == 1 and dropped[0].startswith(
        "[triloop] 18285 lines (1.0 GiB)"
    )  # of 18,385
    cut = task_log.lines.index(dropped[0])
    head = [ln for ln in task_log.lines[:cut] if ln.startswith(("head ", "x"))]
    tail = [ln for ln in task_log.lines[cut:] if ln.startswith(("tail ", "x", '{"ok"'))]
    assert head == [f"head {i}" for i in range(50)]
    assert tail == [*(f"tail {i}" for i in range(951, 1000)), last_line]
    print(
        f"\n1 GiB flood in {took:.1f}s: container log {op.log_file_bytes} bytes on disk"
        f" ({op.log_api_bytes} through the API, cap {limits.container_log_bytes});"
        f" task log {len(task_log.lines)} lines, {task_log.bytes} bytes; worker peak RSS"
        f" growth {rss_growth_kb} KiB; {dropped[0]}"
    )
    assert rss_growth_kb < 64 * 1024, "the worker never held the flood"
    assert op.log_api_bytes <= limits.container_log_bytes
    if op.log_file_bytes is not None:
        assert limits.container_log_bytes // 4 < op.log_file_bytes <= limits.container_log_bytes
    assert task_log.bytes <= limits.task_log_max_kb * 1024 + 64 * 1024  # + the operator's own


def rss_peak_kb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1])


def reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        return False
    return True


def test_a_3_gb_patch_is_refused_from_its_size_with_little_memory(
    app: Any, sandbox_image: str
) -> None:
    """Execution's own path: the sandbox leaves a 3 GiB (sparse) patch; finish refuses it."""
    from sqlalchemy import select
    from triloop.discovery.service import repo_ref
    from triloop.execution.service import HarnessFailed, claim, finish, prepare
    from triloop.onboarding import materialise_sample, onboard
    from triloop.store.models import LedgerEntry, Repo, Ticket

    from tests.support.rows import host_scan

    actor = _actor("exec-1")
    onboard(app, str(materialise_sample(app)), name="sample", actor=actor)
    with app.uow() as session:
        repo = repo_ref(session.get_one(Repo, "sample"))
    host_scan(app, repo, _actor("scan-1"))
    [first, *_] = claim(app, actor)
    request = prepare(app, first, _actor("exec-1", "prepare"))
    result = {
        "schema_version": 1,
        "harness": "autofix",
        "ticket_id": first.ticket_id,
        "status": "changed",
        "summary": "edited",
        "files_changed": request.paths,
    }
    SandboxOperator(
        task_id="run_harness",
        workspace=request.workspace,
        output_dir=request.output_dir,
        workspace_root=str(app.settings.workspaces_dir),
        image=sandbox_image,
        entrypoint=["sh", "-c"],
        command=['truncate -s 3G /out/patch.diff && printf %s "$RESULT" > /out/result.json'],
        environment={"RESULT": json.dumps(result)},
        workspace_readonly=False,
        sandbox_resources={"out_disk_mb": 4096},  # RLIMIT_FSIZE lets it make the file
    ).execute({"run_id": "exec-1"})  # type: ignore[arg-type]
    patch = Path(request.output_dir, "patch.diff")
    assert patch.stat().st_size == 3 << 30
    limit = app.policy.sandbox_resources.patch_max_bytes
    refused = rf"patch\.diff is 3221225472 bytes, over the limit of {limit} bytes; not read"
    tracemalloc.start()
    reset = reset_rss_peak()
    before = rss_peak_kb()
    with pytest.raises(PatchRejected, match=refused):  # the check alone
        validate_patch(patch, Path(request.workspace), request.paths, max_bytes=limit)
    alone_kb = rss_peak_kb() - before
    _, alone_traced = tracemalloc.get_traced_memory()
    with pytest.raises(HarnessFailed, match=rf"{refused} \(sandbox_resources\.patch_max_kb\)"):
        finish(app, request, _actor("exec-1", "open_pr"))
    growth_kb = rss_peak_kb() - before
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"\n3 GiB patch refused: validate_patch peak RSS growth {alone_kb} KiB, Python"
        f" allocations {alone_traced} bytes; whole finish() peak RSS growth {growth_kb} KiB,"
        f" allocations {traced_peak} bytes (peak reset: {reset})"
    )
    assert alone_traced < 50 * MB and traced_peak < 50 * MB
    assert alone_kb < 50 * 1024 and growth_kb < 50 * 1024
    with app.uow() as session:
        ticket = session.get_one(Ticket, first.ticket_id)
        assert ticket.state == "dead_letter" and "3221225472 bytes" in (ticket.last_error or "")
        rows = session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.ticket_id == first.ticket_id, LedgerEntry.action == "ticket.give_up"
            )
        ).all()
        assert len(rows) == 1 and "patch_max_kb" in (rows[0].error or "")


def _actor(run: str, task: str = "t") -> Any:
    from triloop.store.ledger import Actor

    return Actor(name=f"test:{task}", dag_id="triloop_test", run_id=run, task_id=task, try_number=1)


def test_container_limits_are_applied(
    docker_client: docker.DockerClient, operator_for: Callable[..., Measured]
) -> None:
    op = operator_for(
        entrypoint=["sh"], command=["-c", "ulimit -f; ulimit -c"], sandbox_resources={}
    )
    last = op.execute({"run_id": f"itest-{uuid.uuid4().hex[:12]}"})
    fsize_blocks = (SandboxResources().out_disk_mb * MB + MB) // 512
    assert last == "0" and f"{fsize_blocks}" in " ".join(op.task_log.lines)
