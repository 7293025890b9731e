"""Sandbox resource limits without Docker: the policy, the output cap, the disk watcher, the
size-checked reads and the operator's settings."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from triloop.domain.policy import PolicyError, load_policy
from triloop.domain.sandbox_resources import MB, SandboxResources
from triloop.execution.patch import PatchRejected, validate_patch
from triloop.sandbox_files import SandboxFileError, read_sandbox_file
from triloop_sandbox import SandboxOperator, SandboxPolicyError, disk, resources
from triloop_sandbox.disk import DiskWatcher, WatchedMount, measure
from triloop_sandbox.output import CappedOutput


def test_defaults_are_what_a_user_would_expect() -> None:
    limits = SandboxResources()
    assert (limits.out_disk_mb, limits.workspace_disk_mb) == (1024, 2048)
    assert limits.container_log_bytes == 20 * MB
    assert limits.patch_max_bytes == 1 << 20


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"out_disk_mb": 0}, r"sandbox_resources\.out_disk_mb': Input should be greater"),
        ({"workspace_disk_mb": "lots"}, r"sandbox_resources\.workspace_disk_mb': Input should"),
        ({"container_log_max_files": 0}, r"sandbox_resources\.container_log_max_files'"),
        ({"container_log_max_mb": 4096}, r"sandbox_resources\.container_log_max_mb': .*less"),
        ({"task_log_max_kb": 1}, r"sandbox_resources\.task_log_max_kb'"),
        ({"disk_poll_s": 0}, r"sandbox_resources\.disk_poll_s'"),
        ({"patch_max_kb": -1}, r"sandbox_resources\.patch_max_kb'"),
        ({"disk_mb": 10}, r"sandbox_resources\.disk_mb': Extra inputs are not permitted"),
    ],
)
def test_bad_limits_fail_policy_loading_naming_the_field(
    tmp_path: Path, section: dict[str, Any], match: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"sandbox_resources": section}))
    with pytest.raises(PolicyError, match=match):
        load_policy(path)


def test_the_policy_file_sets_the_limits(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"sandbox_resources": {"out_disk_mb": 64}}))
    assert load_policy(path).sandbox_resources.out_disk_mb == 64


# --- the task log: head, a drop line, tail ------------------------------------------------


def capped(chunks: list[bytes], **caps: int) -> tuple[bytes, CappedOutput]:
    caps = {"head_lines": 3, "tail_lines": 2, "head_bytes": 1000, "tail_bytes": 100, **caps}
    output = CappedOutput(chunks, **caps)
    return b"".join(output), output


@pytest.mark.parametrize(
    ("chunks", "caps", "expected"),
    [
        ([b"a\nb\n", b"c\n"], {}, b"a\nb\nc\n"),  # within the head: untouched
        ([b"a\nb\nc\nd\n", b"e\n"], {}, b"a\nb\nc\nd\ne\n"),  # tail holds the rest: nothing dropped
        ([b"a\nb\nc\nd\ne\nf\ng\n"], {}, b"a\nb\nc\n[triloop] 2 lines (4 B) %s\nf\ng\n"),
        ([b"a\nb\nc\nd\n", b"e\nf\n", b"g"], {}, b"a\nb\nc\n[triloop] 2 lines (4 B) %s\nf\ng\n"),
        ([b"abcdefgh\n" * 3], {"head_bytes": 4, "tail_lines": 1}, b"abcd\n[triloop] 2 lines%s"),
    ],
    ids=["under", "tail-fits", "lines", "no-final-newline", "head-bytes"],
)
def test_only_the_head_and_tail_are_kept(
    chunks: list[bytes], caps: dict[str, int], expected: bytes
) -> None:
    out, _ = capped(chunks, **caps)
    head, _, rest = expected.partition(b"%s")
    assert out.startswith(head)
    if rest:
        assert out.endswith(rest) and b"of sandbox output dropped here" in out


def test_the_summary_line_stays_last_and_the_count_is_exact() -> None:
    flood = [b"x" * 99 + b"\n"] * 100_000
    out, output = capped([*flood, b'{"ok": true}\n'], tail_bytes=1000)
    lines = out.decode().splitlines()
    assert lines[-1] == '{"ok": true}' and len(lines) == 3 + 1 + 2
    assert output.dropped_lines == 100_001 - 3 - 2
    assert output.dropped_bytes == 100 * output.dropped_lines
    assert f"{output.dropped_lines} lines" in lines[3]


def test_a_line_longer_than_the_tail_shows_its_end() -> None:
    out, output = capped([b"y" * 10_000] * 100, head_bytes=50)
    assert out.startswith(b"y" * 50 + b"\n[triloop] ")
    assert out.endswith(b"[...] " + b"y" * 100 + b"\n")
    assert output.dropped_bytes == 1_000_000 - 50 - 100


def test_a_flood_of_empty_lines_costs_little() -> None:
    chunk = b"\n" * (64 << 10)
    output = CappedOutput(
        [chunk] * 2048, head_lines=200, tail_lines=200, head_bytes=256 << 10, tail_bytes=256 << 10
    )
    started = time.perf_counter()
    held = max(len(piece) for piece in output)  # 128 MiB of newlines through it
    took = time.perf_counter() - started
    assert held < 512 << 10 and output.dropped_lines == 2048 * 65536 - 400
    assert took < 5, f"{took:.1f}s for 128 MiB"


# --- the disk watcher -----------------------------------------------------------------------


def test_measure_counts_allocated_blocks_once_and_follows_no_symlink(tmp_path: Path) -> None:
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    (tree / "a/b").mkdir(parents=True)
    outside.mkdir()
    (outside / "big").write_bytes(os.urandom(4 * MB))
    (tree / "a/b/data").write_bytes(os.urandom(MB))
    os.link(tree / "a/b/data", tree / "a/hardlink")
    (tree / "sparse").touch()
    os.truncate(tree / "sparse", 10 << 30)  # 10 GiB that use no disk
    (tree / "escape").symlink_to(outside)
    usage = measure(str(tree))
    assert MB <= usage.bytes < MB + 64 * 1024  # the data once, a few directory blocks
    assert usage.inodes == 6 and usage.unmeasured == ""  # tree, a, b, data, sparse, escape


def test_measure_reports_what_it_cannot_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / "deep"
    (deep / "x" / "y" / "z").mkdir(parents=True)
    assert "nested deeper than 2" in measure(str(deep), max_depth=2).unmeasured
    real_open = os.open

    def refusing(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if path == "y":
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(disk.os, "open", refusing)
    assert measure(str(deep)).unmeasured == "'y' cannot be read: Permission denied"


class FakeFilesystem:
    """statvfs numbers the test sets: what the watcher's bound is computed from."""

    def __init__(self) -> None:
        self.used, self.inodes = 10 * MB * 1024, 1000

    def __call__(self, path: str) -> tuple[int, int | None]:
        return self.used, self.inodes


@pytest.fixture
def fs(monkeypatch: pytest.MonkeyPatch) -> FakeFilesystem:
    fake = FakeFilesystem()
    monkeypatch.setattr(disk, "filesystem_used", fake)
    return fake


def watch(tmp_path: Path, budgets: dict[str, int], max_new_files: int = 1000) -> DiskWatcher:
    mounts = []
    for target, budget_mb in budgets.items():
        source = tmp_path / target.strip("/")
        source.mkdir()
        mounts.append(WatchedMount(target, str(source), budget_mb * MB, f"{target} budget"))
    watcher = DiskWatcher(mounts, max_new_files=max_new_files, poll_s=0.01)
    watcher.baseline()
    return watcher


def test_no_walk_while_the_filesystem_cannot_be_over_budget(
    tmp_path: Path, fs: FakeFilesystem
) -> None:
    watcher = watch(tmp_path, {"/out": 8, "/workspace": 64})
    (tmp_path / "out/f").write_bytes(bytes(2 * MB))
    fs.used += 2 * MB
    assert watcher.check() is None and watcher.walks == 0, "2 MB cannot reach 8 MB"
    (tmp_path / "out/g").write_bytes(bytes(7 * MB))
    fs.used += 7 * MB
    breach = watcher.check()
    assert breach is not None and breach.kind == "disk" and breach.mount.target == "/out"
    assert watcher.walks == 1, "the workspace was not walked: the bound excludes it"
    assert breach.message().startswith("sandbox wrote 9 MB to /out (")


def test_growth_another_mount_explains_is_taken_off_the_bound(
    tmp_path: Path, fs: FakeFilesystem
) -> None:
    watcher = watch(tmp_path, {"/out": 8, "/workspace": 8})
    (tmp_path / "out/f").write_bytes(bytes(6 * MB))
    fs.used += 12 * MB  # 6 MB of it was someone else's
    assert watcher.check() is None
    walked = watcher.walks
    fs.used += 1 * MB
    (tmp_path / "workspace/g").write_bytes(bytes(1 * MB))
    assert watcher.check() is None  # bounds: out 6+1, workspace 6+1: under 8, no walk
    assert watcher.walks == walked


def test_too_many_new_files_is_a_breach(tmp_path: Path, fs: FakeFilesystem) -> None:
    watcher = watch(tmp_path, {"/out": 64}, max_new_files=50)
    for i in range(60):
        (tmp_path / f"out/{i}").touch()
    fs.inodes += 60
    breach = watcher.check()
    assert breach is not None and breach.kind == "files"
    assert "created 60 files in /out" in breach.message()


def test_the_final_check_walks_every_mount(tmp_path: Path, fs: FakeFilesystem) -> None:
    watcher = watch(tmp_path, {"/out": 8})
    (tmp_path / "out/f").write_bytes(bytes(9 * MB))  # the filesystem's count says nothing
    assert watcher.check() is None
    breach = watcher.finish()
    assert breach is not None and breach.seen_bytes >= 9 * MB


def test_the_watcher_kills_on_the_first_breach(tmp_path: Path) -> None:
    watcher = watch(tmp_path, {"/out": 1})
    killed: list[str] = []
    watcher.start(killed.append)
    (tmp_path / "out/f").write_bytes(os.urandom(2 * MB))
    deadline = time.monotonic() + 10
    while not killed and time.monotonic() < deadline:
        time.sleep(0.01)
    watcher.stop()
    assert killed and "over its disk budget of 1 MB (/out budget)" in killed[0]


# --- reading what the sandbox wrote ------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda p: (p.touch(), os.truncate(p, 3 << 30)),
            r"is 3221225472 bytes, over the limit of 1024 bytes",
        ),
        (lambda p: p.symlink_to("/dev/zero"), "is a symlink; refused"),
        (lambda p: os.mkfifo(p), r"is not a regular file \(mode p"),
        (lambda p: p.mkdir(), r"is not a regular file \(mode d"),
    ],
    ids=["too-large", "symlink", "fifo", "directory"],
)
def test_a_sandbox_file_is_refused_before_it_is_read(tmp_path: Path, make: Any, match: str) -> None:
    path = tmp_path / "result.json"
    make(path)
    with pytest.raises(SandboxFileError, match=match):
        read_sandbox_file(path, 1024)


def test_a_sandbox_file_within_its_limit_is_read(tmp_path: Path) -> None:
    (tmp_path / "ok").write_bytes(b"x" * 1024)
    assert read_sandbox_file(tmp_path / "ok", 1024) == b"x" * 1024
    with pytest.raises(FileNotFoundError):
        read_sandbox_file(tmp_path / "missing", 1024)


def test_an_oversized_patch_is_rejected_naming_the_policy_field(tmp_path: Path) -> None:
    patch = tmp_path / "patch.diff"
    patch.write_bytes(b"x" * 2048)
    with pytest.raises(PatchRejected, match=r"2048 bytes, over the limit of 1024 bytes.*patch_max"):
        validate_patch(patch, tmp_path, ["a.py"], max_bytes=1024)


# --- the operator ------------------------------------------------------------------------------


def make(**kwargs: Any) -> SandboxOperator:
    return SandboxOperator(task_id="t", workspace="/w", output_dir="/o", **kwargs)


def test_every_container_gets_a_bounded_log_and_file_size_limits() -> None:
    config = make(
        sandbox_resources={"container_log_max_mb": 5, "out_disk_mb": 10}
    ).host_config_hardening
    assert dict(config["log_config"]) == {
        "Type": "json-file",
        "Config": {"max-size": "5m", "max-file": "2"},
    }
    limits = {u["Name"]: (u["Soft"], u["Hard"]) for u in config["ulimits"]}
    assert limits["fsize"] == (11 * MB, 11 * MB) and limits["core"] == (0, 0)
    writable = make(workspace_readonly=False).host_config_hardening["ulimits"]
    assert {u["Name"]: u["Soft"] for u in writable}["fsize"] == 2049 * MB


def test_given_ulimits_are_kept_but_fsize_and_core_are_imposed() -> None:
    from docker.types import Ulimit

    given = [Ulimit(name="nofile", soft=64, hard=64), Ulimit(name="fsize", soft=-1, hard=-1)]
    names = [u["Name"] for u in resources.ulimits(SandboxResources(), False, given)]
    assert names == ["nofile", "fsize", "core"]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"out_disk_mb": 0}, r"refuses sandbox_resources\.out_disk_mb=0: Input should be great"),
        ("1g", r"refuses sandbox_resources='1g': it must be a SandboxResources"),
    ],
)
def test_bad_sandbox_resources_are_refused_at_construction(value: Any, match: str) -> None:
    with pytest.raises(SandboxPolicyError, match=match):
        make(sandbox_resources=value)


def test_a_factory_is_called_at_execute_time_only() -> None:
    calls: list[int] = []

    def factory() -> SandboxResources:
        calls.append(1)
        return SandboxResources(out_disk_mb=7)

    op = make(sandbox_resources=factory)
    assert calls == [] and op.limits == SandboxResources(), "nothing read at parse time"
    assert resources.resolve(factory).out_disk_mb == 7
    with pytest.raises(SandboxPolicyError, match="returned dict, not SandboxResources"):
        resources.resolve(lambda: {})  # type: ignore[arg-type,return-value]


def test_the_dags_sandbox_args_read_the_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triloop_airflow.defaults import SANDBOX_ARGS

    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"sandbox_resources": {"task_log_head_lines": 9}}))
    monkeypatch.setenv("TRILOOP_POLICY_PATH", str(path))
    assert resources.resolve(SANDBOX_ARGS["sandbox_resources"]).task_log_head_lines == 9
    path.write_text(yaml.safe_dump({"sandbox_resources": {"task_log_head_lines": 0}}))
    with pytest.raises(PolicyError, match=r"sandbox_resources\.task_log_head_lines"):
        resources.resolve(SANDBOX_ARGS["sandbox_resources"])


def test_only_the_streamed_output_is_capped() -> None:
    class Engine:
        def attach(self, container: Any, **kwargs: Any) -> Any:
            return iter([b"line\n"] * 1000) if kwargs.get("stream") else b"all"

    from triloop_sandbox.operator import _ExitAwareClient

    op = make(sandbox_resources={"task_log_head_lines": 5, "task_log_tail_lines": 5})
    cap = lambda stream: resources.capped(stream, op.limits)  # noqa: E731 as the operator's
    client = _ExitAwareClient(Engine(), {}, lambda _: None, lambda *_: None, cap_output=cap)
    streamed = b"".join(client.attach({"Id": "c"}, stdout=True, stream=True))
    assert streamed.count(b"line\n") == 10 and b"990 lines" in streamed
    assert client.attach({"Id": "c"}, stdout=True) == b"all"
