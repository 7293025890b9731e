"""Benchmark: what the disk watcher costs with a large writable checkout, and how far a fast
writer gets past its budget.

Builds a workspace of ``--files`` files (100 bytes each, 100 per directory, default 100,000),
then runs the real SandboxOperator on the local Docker engine (image ``TRILOOP_SANDBOX_IMAGE``
or ``triloop-sandbox:latest``) with that workspace writable and both budgets at ``--budget-mb``:

- idle: ``sleep --idle-s`` seconds: polls and walks while nothing is written (the periodic walk);
- out: 1,280 files of 8 MiB (10 GiB) written to /out: where it was stopped;
- workspace: the same written into the checkout;
- one-file: ``dd`` of 10 GiB into /out (the kernel's RLIMIT_FSIZE stops it).

For each: seconds until the task failed, MB seen over the budget, polls, walks and milliseconds
spent walking. The baseline walk (before the container starts) is timed on its own.

    .venv/bin/python -m tests.bench.bench_disk_watch [--files 100000] [--budget-mb 256]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]

from triloop.domain.sandbox_resources import MB  # noqa: E402
from triloop_sandbox.disk import measure  # noqa: E402
from triloop_sandbox.exceptions import SandboxDiskBudgetExceeded  # noqa: E402
from triloop_sandbox.operator import SandboxOperator  # noqa: E402

WRITE_10_GB = (
    "import os\nchunk = bytes(8 << 20)\nfor i in range(1280):\n"
    "    with open(os.path.join(os.environ['TARGET'], f'f{i:04d}'), 'wb') as f:\n"
    "        f.write(chunk)\n"
)


def make_tree(root: Path, files: int) -> None:
    for i in range(files):
        folder = root / f"d{i // 10_000}" / f"e{i // 100}"
        if i % 100 == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i % 100}.py").write_bytes(b"x" * 100)
    for path in [root, *root.rglob("*")]:
        os.chown(path, 10001, 10001) if os.geteuid() == 0 else path.chmod(0o777)


def run(name: str, top: Path, budget_mb: int, argv: list[str], target: str = "/out") -> None:
    out = top / "out"
    out.mkdir(exist_ok=True)
    os.chown(out, 10001, 10001) if os.geteuid() == 0 else out.chmod(0o777)
    op = SandboxOperator(
        task_id=f"bench_{name}",
        workspace=str(top / "ws"),
        output_dir=str(out),
        workspace_root=str(top),
        workspace_readonly=False,
        image=os.environ.get("TRILOOP_SANDBOX_IMAGE", "triloop-sandbox:latest"),
        entrypoint=argv[:1],
        command=argv[1:],
        environment={"TARGET": target},
        wall_clock_limit_s=300,
        sandbox_resources={"out_disk_mb": budget_mb, "workspace_disk_mb": budget_mb},
    )
    started = time.monotonic()
    over = "-"
    try:
        op.execute({"run_id": f"bench-{name}-{time.time_ns()}"})  # type: ignore[arg-type]
    except SandboxDiskBudgetExceeded as exc:
        over = f"{(exc.seen_bytes - exc.budget_bytes) / MB:.0f}"
    took = time.monotonic() - started
    w = op._disk
    assert w is not None
    print(
        f"{name:10} {took:6.1f}s  over budget {over:>5} MB  polls {w.polls:4}"
        f"  walks {w.walks:3}  walking {w.walk_s * 1000:7.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--budget-mb", type=int, default=256)
    parser.add_argument("--idle-s", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-disk-", dir=os.environ.get("TMPDIR")) as tmp:
        top = Path(tmp)
        make_tree(top / "ws", args.files)
        started = time.perf_counter()
        usage = measure(str(top / "ws"))
        walk = time.perf_counter() - started
        print(f"checkout: {usage.inodes} inodes, {usage.bytes / MB:.0f} MB; one walk {walk:.2f}s")
        run("idle", top, args.budget_mb, ["sleep", str(args.idle_s)])
        run("out", top, args.budget_mb, ["python3", "-c", WRITE_10_GB])
        make_tree(top / "ws", args.files)  # the breach emptied it
        run("workspace", top, args.budget_mb, ["python3", "-c", WRITE_10_GB], "/workspace")
        make_tree(top / "ws", args.files)
        run("one-file", top, args.budget_mb, ["dd", "if=/dev/zero", "of=/out/f", "bs=1M"])


if __name__ == "__main__":
    main()
