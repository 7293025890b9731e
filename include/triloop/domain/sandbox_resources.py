"""What a sandbox run may take from the host besides CPU, memory and pids (``sandbox_resources``).

The code in a sandbox may be hostile, so its disk and log volume are budgeted like its time:

- each writable bind mount (``/out``, and ``/workspace`` where the harness may write) has a disk
  budget; over it the container is killed, the task fails with ``SandboxDiskBudgetExceeded``
  (permanent) naming the mount, its budget and what was seen, and what the run wrote there is
  removed;
- the container log (``docker logs``) is a json-file log of bounded size;
- only the head and the tail of the container's output reach the Airflow task log, with a line
  counting what was dropped between them; the last line (the harness's JSON summary) is kept;
- files the sandbox wrote are size-checked before the host reads them (the patch here; the
  other outputs have their own caps where they are read);
- an identical run of a task that opts in (governance's base checks) reuses the stored outputs
  of the last one for ``result_reuse_hours`` (plugins/triloop_sandbox/reuse.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MB = 1024 * 1024


class SandboxResources(BaseModel):
    """Disk, container-log and task-log budgets of every sandbox, and the patch size cap."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    out_disk_mb: int = Field(
        default=1024,
        ge=1,
        le=1 << 20,
        description="MB a run may add under /out (its output directory; also any other writable"
        " mount but the workspace); over it the sandbox is stopped and what it wrote removed",
    )
    workspace_disk_mb: int = Field(
        default=2048,
        ge=1,
        le=1 << 20,
        description="MB a run may add to a writable /workspace (execution's checkout), on top of"
        " what the checkout held when it started",
    )
    max_new_files: int = Field(
        default=100_000,
        ge=1,
        le=100_000_000,
        description="Files, directories and links a run may create in each writable mount",
    )
    disk_poll_s: float = Field(
        default=0.1,
        gt=0,
        le=10,
        description="Seconds between checks of the mounts' filesystems (one statvfs each; the"
        " mounts are walked only when their filesystem grew enough to reach a budget)",
    )
    container_log_max_mb: int = Field(
        default=10, ge=1, le=1024, description="max-size of each json-file of the container log"
    )
    container_log_max_files: int = Field(
        default=2, ge=1, le=20, description="max-file: json-files the container log rotates over"
    )
    task_log_head_lines: int = Field(
        default=200, ge=1, le=100_000, description="First lines of output shown in the task log"
    )
    task_log_tail_lines: int = Field(
        default=200,
        ge=1,
        le=100_000,
        description="Last lines of output shown in the task log (the harness's summary is last)",
    )
    task_log_max_kb: int = Field(
        default=512,
        ge=16,
        le=1 << 20,
        description="KiB of output the task log shows at most: half for the head, half for the"
        " tail; a line saying how many lines and bytes were dropped sits between them",
    )
    patch_max_kb: int = Field(
        default=1024,
        ge=1,
        le=1 << 20,
        description="KiB a harness patch (/out/patch.diff) may have; a larger one is refused"
        " from its size, before it is read",
    )

    result_reuse_hours: float = Field(
        default=24,
        ge=0,
        le=24 * 365,
        description="Hours the outputs of a run are reused by an identical run (same image,"
        " command, environment, git tree and inputs) of a task that opts in: governance's"
        " checks of a PR's base; 0 never reuses",
    )

    @property
    def container_log_bytes(self) -> int:
        """The most the container log can hold on the engine's disk."""
        return self.container_log_max_mb * MB * self.container_log_max_files

    @property
    def patch_max_bytes(self) -> int:
        return self.patch_max_kb * 1024
