"""The sandbox's disk and log budgets as Docker settings, and the clean-up after a breach.

``SandboxResources`` (the policy's ``sandbox_resources:``) becomes: a json-file log config with
max-size/max-file on every container; ``RLIMIT_FSIZE`` at the largest disk budget (the kernel
stops any single file there, between two polls of the watcher) and ``RLIMIT_CORE`` 0 (a crash
dumps no core, wherever the host's core_pattern would send it); a :class:`DiskWatcher` over the
writable bind mounts; a :class:`CappedOutput` over the container's output.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from docker.types import LogConfig, Mount, Ulimit
from pydantic import ValidationError
from triloop.domain.sandbox_resources import MB, SandboxResources

from triloop_sandbox.disk import DiskWatcher, WatchedMount
from triloop_sandbox.exceptions import SandboxPolicyError
from triloop_sandbox.output import CappedOutput

log = logging.getLogger(__name__)
ResourcesArg = SandboxResources | Mapping[str, Any] | Callable[[], SandboxResources] | None
FSIZE_MARGIN = MB  # the rlimit sits a little above the budget: reaching it is a breach
WIPE_SCRIPT = (
    'for d in /wipe/*; do chmod -R u+rwX "$d" 2>/dev/null;'
    ' find "$d" -mindepth 1 -delete || exit 1; done'
)


def check_resources(value: ResourcesArg) -> SandboxResources | Callable[[], SandboxResources]:
    """The operator's ``sandbox_resources``, checked; a dict is validated as the policy's."""
    if value is None:
        return SandboxResources()
    if isinstance(value, SandboxResources) or callable(value):
        return value
    if isinstance(value, Mapping):
        try:
            return SandboxResources.model_validate(dict(value))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            given = dict(value).get(field, "?")
            raise SandboxPolicyError(
                f"SandboxOperator refuses sandbox_resources.{field}={given!r}: {first['msg']}",
                argument=f"sandbox_resources.{field}",
            ) from exc
    raise SandboxPolicyError(
        f"SandboxOperator refuses sandbox_resources={value!r}: it must be a SandboxResources,"
        " a dict or a callable returning one",
        argument="sandbox_resources",
    )


def resolve(value: SandboxResources | Callable[[], SandboxResources]) -> SandboxResources:
    """Call a resources factory (read the policy at run time) and check what it returned."""
    limits = value if isinstance(value, SandboxResources) else value()
    if not isinstance(limits, SandboxResources):
        raise SandboxPolicyError(
            f"sandbox_resources returned {type(limits).__name__}, not SandboxResources",
            argument="sandbox_resources",
        )
    return limits


def log_config(limits: SandboxResources) -> LogConfig:
    return LogConfig(
        type=LogConfig.types.JSON,
        config={
            "max-size": f"{limits.container_log_max_mb}m",
            "max-file": str(limits.container_log_max_files),
        },
    )


def ulimits(
    limits: SandboxResources, workspace_writable: bool, given: Iterable[Any] = ()
) -> list[Ulimit]:
    """The caller's ulimits, with fsize at the largest budget and core at 0 imposed."""
    budget = max(limits.out_disk_mb, limits.workspace_disk_mb if workspace_writable else 0)
    fsize = budget * MB + FSIZE_MARGIN
    kept = [u for u in given if _name(u) not in ("fsize", "core")]
    imposed = [Ulimit(name="fsize", soft=fsize, hard=fsize), Ulimit(name="core", soft=0, hard=0)]
    return [*kept, *imposed]


def _name(ulimit: Any) -> str:
    return str(ulimit.get("Name") if isinstance(ulimit, Mapping) else ulimit.name)


def watcher(mounts: Iterable[Mount], limits: SandboxResources) -> DiskWatcher:
    """A watcher over the writable bind mounts (not yet measured: call ``baseline``)."""
    watched = []
    for mount in mounts:
        if mount.get("ReadOnly") or mount.get("Type") != "bind":
            continue
        target, source = str(mount["Target"]), str(mount["Source"])
        if target == "/workspace":
            budget, setting = limits.workspace_disk_mb, "sandbox_resources.workspace_disk_mb"
        else:
            budget, setting = limits.out_disk_mb, "sandbox_resources.out_disk_mb"
        watched.append(WatchedMount(target, source, budget * MB, setting))
    return DiskWatcher(watched, max_new_files=limits.max_new_files, poll_s=limits.disk_poll_s)


def capped(stream: Iterable[bytes | str], limits: SandboxResources) -> CappedOutput:
    half = limits.task_log_max_kb * 1024 // 2
    return CappedOutput(
        stream,
        head_lines=limits.task_log_head_lines,
        tail_lines=limits.task_log_tail_lines,
        head_bytes=half,
        tail_bytes=half,
    )


def empty_dir(path: str) -> bool:
    """Remove everything inside ``path``, never following a symlink; True if it is empty now."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return True
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)  # fd-based on Linux: a symlink race cannot redirect it
            else:
                os.unlink(entry.path)
        except OSError:
            pass  # left for the clean-up container (files the host may not delete)
    try:
        return not any(True for _ in os.scandir(path))
    except FileNotFoundError:
        return True


def wipe_in_container(
    client: Any, *, image: str, user: str, sources: list[str], labels: dict[str, str]
) -> int:
    """Empty ``sources`` from a container running as the sandbox user; returns its exit code.

    For what the host may not delete: files the sandbox's uid owns in directories it made
    read-only. ``client`` is the hardened client, so this container is locked down like the
    sandbox (no network, no capabilities, read-only root, capped log).
    """
    mounts = [Mount(f"/wipe/{i}", src, type="bind") for i, src in enumerate(sources)]
    container = client.create_container(
        image=image,
        entrypoint=["sh", "-c", WIPE_SCRIPT],
        user=user,
        labels={**labels, "io.triloop.cleanup": "1"},
        host_config=client.create_host_config(network_mode="none", mounts=mounts),
    )
    try:
        client.start(container["Id"])
        return int(client.wait(container["Id"], timeout=120).get("StatusCode", -1))
    finally:
        client.remove_container(container["Id"], force=True)


def empty_mounts(sources: list[str], in_container: Callable[[list[str]], int]) -> list[str]:
    """Empty each of ``sources`` from the host, what the host may not delete from a container
    (``in_container``, e.g. :func:`wipe_in_container`); returns the ones still not empty."""
    left = [source for source in sources if not empty_dir(source)]
    if left:
        try:
            in_container(left)
        except Exception as exc:  # an engine error must not hide the budget error
            log.error("Could not run the clean-up container for %s: %s", left, exc)
        left = [source for source in left if not empty_dir(source)]
    return left
