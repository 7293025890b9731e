"""SandboxOperator: DockerOperator, hardened by default, for untrusted harness runs."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.docker.exceptions import DockerContainerFailedException
from airflow.providers.docker.operators.docker import DockerOperator
from docker.errors import APIError
from docker.types import Mount
from triloop.domain.sandbox_resources import SandboxResources

from triloop_sandbox import hardening, reuse
from triloop_sandbox import resources as limits
from triloop_sandbox.disk import DiskWatcher
from triloop_sandbox.egress import DNS_NOWHERE, EgressGateway, check_allowlist
from triloop_sandbox.engine import SandboxEngineHook
from triloop_sandbox.exceptions import (
    SandboxDiskBudgetExceeded,
    SandboxEngineError,
    SandboxHarnessFailed,
    SandboxOutOfMemory,
    SandboxPolicyError,
    SandboxTimeout,
    note_failure,
)
from triloop_sandbox.lease import LeaseFactory, LeaseKeeper

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_IMAGE = "triloop-sandbox:latest"
SANDBOX_USER = "10001:10001"
# The labels that name one task instance; its tries differ only in io.triloop.try_number.
TASK_INSTANCE_LABELS = tuple(
    f"io.triloop.{key}" for key in ("dag_id", "run_id", "task_id", "map_index")
)


class _ExitAwareClient(hardening.HardenedClient):
    """HardenedClient that reports each container's end before the provider removes it."""

    def __init__(
        self,
        client: Any,
        host_config: dict[str, Any],
        on_start: Callable[[str], None],
        on_exit: Callable[[str, Any], None],
        egress_network: str | None = None,
        cap_output: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(client, host_config, on_start, egress_network)
        self._on_exit = on_exit
        self._cap_output = cap_output

    def attach(self, container: Any, *args: Any, **kwargs: Any) -> Any:
        """The output stream the provider logs, capped to its head and tail (``output``)."""
        stream = self._client.attach(container, *args, **kwargs)
        if kwargs.get("stream") and self._cap_output is not None:
            return self._cap_output(stream)
        return stream

    def wait(self, container: Any, *args: Any, **kwargs: Any) -> Any:
        result = self._client.wait(container, *args, **kwargs)
        self._on_exit(container["Id"] if isinstance(container, dict) else str(container), result)
        return result


class SandboxOperator(DockerOperator):
    """Run a command in the Triloop sandbox image with the host locked out.

    Always: no network (``network_mode="none"``), uid/gid 10001, every capability dropped,
    ``no-new-privileges``, read-only root filesystem, a size-limited tmpfs on /tmp, pids and
    memory limits, a hard CPU quota (``nano_cpus``), labels for the janitor, a wall-clock limit
    that kills the container (``SandboxTimeout``), removal of the container however it ends, and
    never ``retrieve_output``. A harness exit code in ``final_exit_codes`` (1: it ran and
    failed, 2: it refused its request) fails the task without an Airflow retry
    (``SandboxHarnessFailed``): the ticket's lifecycle decides about another attempt. With
    ``lease`` (and ``ticket_id``), the run's lease on the ticket is checked before the
    container starts and renewed while it runs; a lost lease kills the container and fails the
    task (``SandboxLeaseLost``). ``workspace`` is
    bind-mounted at /workspace (read-only unless ``workspace_readonly=False``) and
    ``output_dir`` at /out; both must resolve, symlinks followed, inside ``workspace_root``
    (default ``$TRILOOP_HOME/workspaces``, read at execute time) and must be writable by uid
    10001 where the harness writes. With ``engine_conn_id`` (templated; empty means the local
    engine) containers run on a separate engine reached over mutual TLS with the certificates of
    that Airflow connection, read at execute time (``triloop_sandbox.engine``); the hardening is
    the same, since it travels in the HostConfig.

    How the hardening is applied: DockerOperator has no parameters for cap_drop, read_only,
    tmpfs, pids_limit, nano_cpus or security_opt, and builds the HostConfig inside
    ``_run_image_with_mounts`` via ``self.cli.create_host_config(...)``. Copying that method
    would fork provider code that changes between releases, so ``cli`` returns
    ``hardening.HardenedClient``, a proxy over docker's ``APIClient`` whose
    ``create_host_config`` adds the settings and whose ``create_container`` refuses any
    HostConfig lacking them. If a future provider stops going through ``create_host_config``,
    containers fail closed instead of starting unhardened.
    """

    image: str
    environment: dict[str, Any]
    template_fields: Sequence[str] = (
        *(field for field in DockerOperator.template_fields if field != "mounts"),
        "workspace",
        "output_dir",
        "ticket_id",
        "engine_conn_id",
    )

    def __init__(
        self,
        *,
        workspace: str,
        output_dir: str,
        workspace_readonly: bool = True,
        workspace_root: str | None = None,
        wall_clock_limit_s: int = 900,
        mem_limit: str = "2g",
        cpu_limit: float = 1.0,
        pids_limit: int = 256,
        final_exit_codes: Sequence[int] = (1, 2),
        tmpfs_size: str = "512m",
        ticket_id: str | None = None,
        lease: LeaseFactory | None = None,
        labels: dict[str, str] | None = None,
        engine_conn_id: str | None = None,
        image: str | None = None,
        network_mode: str = "none",
        user: str = SANDBOX_USER,
        mounts: list[Mount | dict[str, Any]] | None = None,
        egress_allowlist: list[str] | None = None,
        egress_upstream_network: str | None = None,
        egress_max_tokens: int | None = None,
        sandbox_resources: limits.ResourcesArg = None,
        reuse_results: bool = False,
        **kwargs: Any,
    ) -> None:
        hardening.check_arguments(kwargs, network_mode, user)
        self.sandbox_resources = limits.check_resources(sandbox_resources)
        hardening.check_no_docker_socket("workspace", workspace)
        hardening.check_no_docker_socket("output_dir", output_dir)
        hardening.check_no_docker_socket("workspace_root", workspace_root)
        for name, value in (("wall_clock_limit_s", wall_clock_limit_s), ("cpu_limit", cpu_limit)):
            if not value > 0:
                raise hardening.refuse(f"{name}={value!r}", "it must be positive")
        if not pids_limit > 0:
            raise hardening.refuse(f"pids_limit={pids_limit!r}", "it must be positive")
        if lease is not None and (not callable(lease) or ticket_id is None):
            raise hardening.refuse(f"lease={lease!r}", "it must be a callable, with a ticket_id")
        if labels is not None and not isinstance(labels, dict):
            raise hardening.refuse(f"labels={labels!r}", "labels must be a dict of strings")
        self.extra_mounts = hardening.normalize_mounts(mounts or [])
        self.egress_allowlist = check_allowlist(egress_allowlist)
        if egress_upstream_network in ("host", "none", ""):
            why = "the proxy's upstream must be a bridge network"
            raise hardening.refuse(f"egress_upstream_network={egress_upstream_network!r}", why)
        if egress_max_tokens is not None and not (
            isinstance(egress_max_tokens, int) and egress_max_tokens > 0
        ):
            why = "it must be a positive number of tokens"
            raise hardening.refuse(f"egress_max_tokens={egress_max_tokens!r}", why)
        self.egress_upstream_network = egress_upstream_network
        self.egress_max_tokens = egress_max_tokens
        super().__init__(
            image=image or "",
            network_mode="none",
            user=user,
            mem_limit=mem_limit,
            mount_tmp_dir=False,
            auto_remove="force",
            retrieve_output=False,
            **kwargs,
        )
        self.workspace = workspace
        self.output_dir = output_dir
        self.workspace_readonly = workspace_readonly
        self.reuse_results = reuse_results
        self.workspace_root = workspace_root
        self.wall_clock_limit_s = wall_clock_limit_s
        self.cpu_limit = cpu_limit
        self.pids_limit = pids_limit
        self.tmpfs_size = tmpfs_size
        self.ticket_id = ticket_id
        self.lease = lease
        self.extra_labels = dict(labels or {})
        self.engine_conn_id = engine_conn_id
        # Created per execute(): Airflow deep-copies operators and locks cannot be copied.
        self._timer: threading.Timer | None = None
        self._timed_out: threading.Event | None = None
        self._keeper: LeaseKeeper | None = None
        self._oom_killed = False
        self._exit_code: int | None = None
        self.final_exit_codes = tuple(final_exit_codes)
        self._egress: EgressGateway | None = None  # this run's, while it runs
        self._limits: SandboxResources | None = None  # resolved (the policy read) in execute
        self._disk: DiskWatcher | None = None  # this run's, while it runs
        self._disk_error: SandboxDiskBudgetExceeded | None = None

    @property
    def limits(self) -> SandboxResources:
        """The disk and log budgets: as resolved by execute, else as given, else the defaults."""
        if self._limits is not None:
            return self._limits
        given = self.sandbox_resources
        return given if isinstance(given, SandboxResources) else SandboxResources()

    @property
    def private_environment(self) -> dict[str, str]:
        """Variables handed to the container but never rendered or logged (the model API key).

        The provider keeps them in ``_private_environment``; this is the public way to set
        them once the task runs (the key is read from its connection then, not at parse time).
        """
        return dict(self._private_environment)

    @private_environment.setter
    def private_environment(self, values: dict[str, str]) -> None:
        self._private_environment = dict(values)

    @property
    def host_config_hardening(self) -> dict[str, Any]:
        return {
            "network_mode": self._egress_network or "none",
            "privileged": False,
            "cap_add": None,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,exec,size={self.tmpfs_size},mode=1777"},
            "pids_limit": self.pids_limit,
            "nano_cpus": int(self.cpu_limit * 1_000_000_000),
            "mem_limit": self.mem_limit,
            "memswap_limit": self.mem_limit,  # no swap on top of the memory limit
            "log_config": limits.log_config(self.limits),  # docker logs: json-file, bounded
            "ulimits": limits.ulimits(self.limits, not self.workspace_readonly, self.ulimits),
            # Behind an egress gateway: no resolver that answers, and no IPv6 (no link-local
            # path to the host's bridge).
            **(
                {"dns": DNS_NOWHERE, "sysctls": {"net.ipv6.conf.all.disable_ipv6": "1"}}
                if self._egress_network
                else {}
            ),
        }

    @property
    def _egress_network(self) -> str | None:
        return self._egress.network if self._egress and self._egress.proxy_ip else None

    @cached_property
    def hook(self) -> Any:
        """DockerOperator's hook for the local engine, or the remote engine's over mutual TLS."""
        if not self.engine_conn_id:
            return super().hook
        if self.docker_conn_id:
            raise SandboxEngineError(
                str(self.engine_conn_id),
                "docker_conn_id",
                "registry login is not supported on a remote engine: build or load the image there",
            )
        return SandboxEngineHook(
            str(self.engine_conn_id), version=self.api_version, timeout=self.timeout
        )

    @property
    def cli(self) -> Any:
        client = self.hook.api_client
        return _ExitAwareClient(
            client,
            self.host_config_hardening,
            self._on_start,
            self._on_exit,
            egress_network=self._egress_network,
            cap_output=lambda stream: limits.capped(stream, self.limits),
        )

    def execute(self, context: Context) -> Any:
        try:
            return self._execute(context)
        except Exception as exc:
            note_failure(context, exc)
            raise

    def _execute(self, context: Context) -> Any:
        self.image = self.image or os.environ.get("TRILOOP_SANDBOX_IMAGE") or DEFAULT_IMAGE
        self._limits = limits.resolve(self.sandbox_resources)  # a factory reads the policy now
        root = self.workspace_root
        if not root:  # read here, at run time, never at import or DAG-parse time
            if not os.environ.get("TRILOOP_HOME"):
                raise SandboxPolicyError("workspace_root is unset and so is TRILOOP_HOME")
            root = os.path.join(os.environ["TRILOOP_HOME"], "workspaces")
        real_root = hardening.resolve_root(root)
        workspace = hardening.resolve_inside("workspace", self.workspace, real_root)
        output_dir = hardening.resolve_inside("output_dir", self.output_dir, real_root)
        extra = [
            {**m, "Source": hardening.resolve_inside("mounts", m["Source"], real_root)}
            for m in self.extra_mounts
        ]
        self.mounts = [
            Mount("/workspace", workspace, type="bind", read_only=self.workspace_readonly),
            Mount("/out", output_dir, type="bind", read_only=False),
            *extra,
        ]
        self.labels = {**self.extra_labels, **self.run_labels(context)}
        reusable = self._reusable(real_root, workspace, output_dir)
        if reusable is not None and self._reused(*reusable, output_dir):
            return None
        self._remove_earlier_tries()
        self._timed_out = timed_out = threading.Event()
        keeper = None
        if self.lease is not None and self.ticket_id:  # a lost lease starts no container
            keeper = LeaseKeeper.hold(self.lease, str(self.ticket_id), context)
        self._keeper = keeper
        self._oom_killed = False
        self._exit_code = None
        self._disk, self._disk_error = limits.watcher(self.mounts, self._limits), None
        self._disk.baseline()  # before the container starts: what the mounts already hold
        try:
            self._start_egress(output_dir)
            result = super().execute(context)
        except DockerContainerFailedException as exc:
            container_id = (self.container or {}).get("Id")
            over = self._disk_over_budget()
            if over is not None:
                raise over from exc
            if keeper is not None and keeper.lost.is_set():
                raise keeper.lost_error("its container was killed", container_id) from exc
            if timed_out.is_set():
                raise SandboxTimeout(
                    f"sandbox exceeded its wall-clock limit of {self.wall_clock_limit_s}s",
                    limit_s=self.wall_clock_limit_s,
                    container_id=container_id,
                    logs=[str(line) for line in (exc.logs or [])[-60:]],
                ) from exc
            if self._oom_killed:
                raise SandboxOutOfMemory(
                    "sandbox was killed by the kernel OOM killer: it exceeded its memory limit"
                    f" of {self.mem_limit} (mem_limit)",
                    mem_limit=self.mem_limit,
                    container_id=container_id,
                    logs=[str(line) for line in (exc.logs or [])[-60:]],
                ) from exc
            if self._exit_code in self.final_exit_codes:
                raise SandboxHarnessFailed(
                    f"the harness exited {self._exit_code}: it ran and failed or refused its"
                    " request (see its result and log); not retried by Airflow",
                    exit_code=int(self._exit_code or 0),
                    logs=[str(line) for line in (exc.logs or [])[-60:]],
                ) from exc
            raise
        finally:
            self._cancel_timer()
            if keeper is not None:
                keeper.stop()
            self._stop_egress()
            over = self._disk_over_budget()  # also when the provider raised something else
        if over is not None:
            raise over
        if keeper is not None and keeper.lost.is_set():
            raise keeper.lost_error("its result is not used", (self.container or {}).get("Id"))
        if reusable is not None:
            cache, run_key, before = reusable
            kept = reuse.store(cache, run_key, output_dir, before, self._reuse_age_s)
            self.log.info("Stored %d output files for identical runs (%s)", kept, cache / run_key)
        return result

    @property
    def _reuse_age_s(self) -> float:
        return self.limits.result_reuse_hours * 3600

    def _reusable(
        self, root: str | Path, workspace: str, output_dir: str
    ) -> tuple[Path, str, dict[str, str]] | None:
        """(cache, key, the output directory's files before the run) when this run may reuse
        or be reused (see triloop_sandbox.reuse), else None."""
        if not self.reuse_results or self._reuse_age_s <= 0 or self.egress_allowlist:
            return None
        if not self.workspace_readonly:  # a writable checkout: what the run did is in it
            return None
        if self._private_environment:  # never a secret in a key
            return None
        try:
            image_id = str(self.hook.api_client.inspect_image(self.image)["Id"])
        except (APIError, KeyError) as exc:
            self.log.info("No result reuse: image %s not inspected (%s)", self.image, exc)
            return None
        before = reuse.listing(output_dir)
        inputs = reuse.Inputs(
            image_id=image_id,
            command=self.command if isinstance(self.command, str) else list(self.command or []),
            user=str(self.user),
            environment={str(k): str(v) for k, v in (self.environment or {}).items()},
            workspace=workspace,
            output_dir=output_dir,
        )
        run_key = reuse.key(inputs, before)
        if run_key is None or before is None:
            self.log.info("No result reuse: the workspace or output directory is not reusable")
            return None
        return Path(root, reuse.CACHE_DIR), run_key, before

    def _reused(self, cache: Path, run_key: str, before: dict[str, str], output_dir: str) -> bool:
        entry = reuse.lookup(cache, run_key, self._reuse_age_s)
        if entry is None:
            return False
        copied = reuse.restore(entry, output_dir)
        self.log.info(
            "Reused the outputs of an identical run (same image, command, environment, git tree"
            " and inputs): %d files from %s; no container started",
            copied,
            entry,
        )
        return True

    def _remove_earlier_tries(self) -> None:
        """Remove containers that earlier tries of this task instance left running.

        A worker killed mid-run (SIGKILL, a lost node) cannot remove its container; when
        Airflow retries the task, the new try does it before starting its own.
        """
        same = [f"{key}={self.labels[key]}" for key in TASK_INSTANCE_LABELS]
        mine = self.labels["io.triloop.try_number"]
        for found in self.cli.containers(all=True, filters={"label": same}):
            if (found.get("Labels") or {}).get("io.triloop.try_number") != mine:
                self.log.warning("Removing container %s of an earlier try", found["Id"][:12])
                self.cli.remove_container(found["Id"], force=True)

    def run_labels(self, context: Context) -> dict[str, str]:
        """Labels naming the run, so the janitor can find and reap orphans."""
        ti = context.get("ti")
        labels = {
            "io.triloop.sandbox": "1",
            "io.triloop.dag_id": str(getattr(ti, "dag_id", None) or self.dag_id),
            "io.triloop.run_id": str(getattr(ti, "run_id", None) or context.get("run_id", "")),
            "io.triloop.task_id": str(getattr(ti, "task_id", None) or self.task_id),
            "io.triloop.try_number": str(getattr(ti, "try_number", 0)),
            "io.triloop.map_index": str(getattr(ti, "map_index", -1)),
        }
        if self.ticket_id:
            labels["io.triloop.ticket_id"] = str(self.ticket_id)
        return labels

    def _on_start(self, container_id: str) -> None:
        self._arm_timer(container_id)
        if self._disk is not None:
            self._disk.start(lambda why: self._kill(container_id, why))
        if self._keeper is not None:
            self._keeper.start(lambda: self._kill(container_id, "the lease was lost"))

    def _on_exit(self, container_id: str, result: Any) -> None:
        """Note the exit code, and read State.OOMKilled while the container still exists."""
        self._exit_code = result.get("StatusCode") if isinstance(result, dict) else None
        try:
            state = self.hook.api_client.inspect_container(container_id).get("State") or {}
        except APIError as exc:
            self.log.warning("Could not inspect container %s: %s", container_id[:12], exc)
            return
        self._oom_killed = bool(state.get("OOMKilled"))

    def _arm_timer(self, container_id: str) -> None:
        self._cancel_timer()
        timed_out = self._timed_out or threading.Event()
        args = (container_id, timed_out)
        self._timer = threading.Timer(self.wall_clock_limit_s, self._expire, args)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self, container_id: str, timed_out: threading.Event) -> None:
        timed_out.set()
        self._kill(container_id, f"the wall-clock limit of {self.wall_clock_limit_s}s was reached")

    def _kill(self, container_id: str, why: str) -> None:
        self.log.error(
            "Killing container %s (ticket %s): %s", container_id[:12], self.ticket_id, why
        )
        try:
            self.hook.api_client.kill(container_id)
        except APIError as exc:  # it may have exited on its own in the meantime
            self.log.warning("Could not kill container %s: %s", container_id[:12], exc)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_kill(self) -> None:
        """Task killed (UI, timeout, SIGTERM): force-remove the container, which also kills it."""
        self._cancel_timer()
        if self._disk is not None:
            self._disk.stop()
        if self._keeper is not None:
            self._keeper.stop()
        if not self.hook.client_created or not self.container:
            self._stop_egress()
            return
        try:
            self.hook.api_client.remove_container(self.container["Id"], force=True)
        except APIError as exc:
            self.log.info("Container %s already gone: %s", self.container["Id"][:12], exc)
        self._stop_egress()

    def _start_egress(self, output_dir: str) -> None:
        """With an allowlist: start this run's egress gateway and put the sandbox behind it.

        The sandbox gets the proxy (by IP) in its proxy variables and the meter directory
        read-only at /out/egress; the hardening switches its network to the gateway's.
        """
        if not self.egress_allowlist:
            return
        self._egress = gateway = EgressGateway(
            self.hook.api_client,
            image=self.image,
            allowlist=self.egress_allowlist,
            output_dir=output_dir,
            labels=self.labels,
            upstream_network=self.egress_upstream_network,
            max_tokens=self.egress_max_tokens,
            log_config=limits.log_config(self.limits),
        )
        gateway.start()  # a failed start is torn down by _stop_egress in execute's finally
        self.environment = {**self.environment, **gateway.proxy_environment}
        meter = Mount("/out/egress", str(gateway.meter_dir), type="bind", read_only=True)
        self.mounts = [*self.mounts, meter]

    def _stop_egress(self) -> None:
        gateway, self._egress = self._egress, None
        if gateway is None:
            return
        gateway.close()
        usage = gateway.usage() or {}
        self.log.info(
            "Egress (ticket %s): %s requests, %s tokens, %s refused, over budget: %s",
            self.ticket_id,
            usage.get("requests"),
            usage.get("tokens"),
            len(usage.get("refused") or []),
            usage.get("over_budget") or "no",
        )

    def _disk_over_budget(self) -> SandboxDiskBudgetExceeded | None:
        """After the container ended: walk the writable mounts once more; over budget, stop the
        egress proxy (it writes under /out), empty every writable mount and return the error."""
        watcher = self._disk
        if watcher is None or self._disk_error is not None:
            return self._disk_error
        breach = watcher.finish()  # the first call walks, later ones return what it found
        if breach is None:
            return None
        self._stop_egress()
        client = hardening.HardenedClient(
            self.hook.api_client, self.host_config_hardening, lambda _: None
        )
        left = limits.empty_mounts(
            [m.source for m in watcher.mounts],
            lambda sources: limits.wipe_in_container(
                client, image=self.image, user=self.user, sources=sources, labels=self.labels
            ),
        )
        removed = ", ".join(m.target for m in watcher.mounts)
        outcome = f"what it wrote to {removed} was removed"
        if left:
            outcome = f"could not empty {', '.join(left)}"
        self._disk_error = SandboxDiskBudgetExceeded(
            f"{breach.message()}; the sandbox was stopped and {outcome}",
            mount=breach.mount.target,
            source=breach.mount.source,
            budget_bytes=breach.mount.budget_bytes,
            seen_bytes=breach.seen_bytes,
            new_files=breach.new_files,
            container_id=(self.container or {}).get("Id"),
        )
        return self._disk_error
