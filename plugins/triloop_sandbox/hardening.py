"""Sandbox policy: argument refusals, host-path checks and the hardened Docker client proxy."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from docker.errors import APIError
from docker.types import Mount

from triloop_sandbox.egress import DNS_NOWHERE, EGRESS_LABEL
from triloop_sandbox.exceptions import SandboxPolicyError

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")  # refused in any mount

# DockerOperator arguments the sandbox refuses when set to anything but their safe default.
REFUSED_ARGUMENTS = {
    "privileged": "a privileged container can take over the host",
    "cap_add": "every capability is dropped; adding some back is refused",
    "retrieve_output": "it unpickles what an untrusted container wrote; read files from output_dir",
    "retrieve_output_path": "retrieve_output is refused; read files from output_dir",
    "mount_tmp_dir": "no host temp dir is mounted; /tmp is a size-limited tmpfs",
    "host_tmp_dir": "no host temp dir is mounted; /tmp is a size-limited tmpfs",
    "port_bindings": "the sandbox has no network to publish ports on",
    "extra_hosts": "the sandbox has no network",
    "ipc_mode": "sharing an IPC namespace is refused",
    "device_requests": "host devices are refused",
    "cpus": "use cpu_limit, a hard quota (nano_cpus), not relative cpu shares",
}


def refuse(argument: str, why: str) -> SandboxPolicyError:
    return SandboxPolicyError(f"SandboxOperator refuses {argument}: {why}", argument=argument)


def check_arguments(kwargs: Mapping[str, Any], network_mode: str, user: str) -> None:
    """Construction-time refusals; each error names the offending argument."""
    for key, why in REFUSED_ARGUMENTS.items():
        if kwargs.get(key):
            raise refuse(f"{key}={kwargs[key]!r}", why)
    if kwargs.get("auto_remove", "force") != "force":
        raise refuse(f"auto_remove={kwargs['auto_remove']!r}", "containers are always removed")
    if network_mode == "host":
        raise refuse("network_mode='host'", "host networking exposes every host service")
    if network_mode != "none":
        why = "only 'none' is accepted; egress_allowlist gives a run its own egress network"
        raise refuse(f"network_mode={network_mode!r}", why)
    uid, _, gid = str(user).partition(":")
    if uid in ("", "0", "root") or gid in ("0", "root"):
        raise refuse(f"user={user!r}", "the sandbox runs as a non-root uid:gid")


def check_no_docker_socket(argument: str, *values: object) -> None:
    for value in values:
        if value is not None and "docker.sock" in str(value):  # refuse the socket anywhere
            raise refuse(f"{argument}={value!r}", "the Docker socket is root on the host")


def normalize_mounts(mounts: Iterable[Mount | Mapping[str, Any]]) -> list[Mount]:
    result = []
    for item in mounts:
        mount = item if isinstance(item, Mount) else Mount(**item)
        check_no_docker_socket("mounts", mount.get("Source"), mount.get("Target"))
        if mount.get("Type") != "bind":
            raise refuse(f"mounts[type={mount.get('Type')!r}]", "only bind mounts are allowed")
        result.append(mount)
    return result


def resolve_root(workspace_root: str) -> Path:
    root = Path(workspace_root).resolve()
    if not root.is_dir() or root == Path("/"):
        raise refuse(f"workspace_root={workspace_root!r}", "it must be an existing dir, not '/'")
    return root


def resolve_inside(argument: str, path: str, root: Path) -> str:
    """Resolve symlinks; the real path must be an existing non-socket inside the root."""
    check_no_docker_socket(argument, path)
    real = Path(path).resolve()
    if not real.exists():
        raise refuse(f"{argument}={path!r}", "the path does not exist")
    if not real.is_relative_to(root):
        raise refuse(f"{argument}={path!r}", f"{real} is outside the workspace root {root}")
    if stat.S_ISSOCK(real.stat().st_mode):
        raise refuse(f"{argument}={path!r}", "mounting a socket is refused")
    for socket in DOCKER_SOCKETS:
        if Path(socket).exists() and Path(socket).resolve().is_relative_to(real):
            raise refuse(f"{argument}={path!r}", f"it contains the Docker socket {socket}")
    return str(real)


# HostConfig keys (as the Engine API spells them) that must carry the hardened values.
REQUIRED_HOST_CONFIG = (
    "CapDrop",
    "SecurityOpt",
    "ReadonlyRootfs",
    "Tmpfs",
    "PidsLimit",
    "NanoCpus",
)


class HardenedClient:
    """A thin proxy over ``docker.APIClient`` that the operator hands to DockerOperator.

    ``create_host_config`` adds the hardened settings the provider has no parameters for;
    ``create_container`` refuses a host config without them or with a docker.sock bind (fail
    closed if a future provider builds its HostConfig some other way); ``start`` reports the
    container id so the operator can arm its wall-clock timer; ``remove_container`` tolerates a
    container that on_kill already removed. Everything else is delegated.

    The network is ``none``, or ``egress_network`` when given: the internal network of this
    run's egress gateway, accepted only while the engine reports it internal and labelled
    ``io.triloop.egress=1`` and with the sandbox's DNS pointed nowhere (fail closed).
    """

    def __init__(
        self,
        client: Any,
        hardening: Mapping[str, Any],
        on_start: Callable[[str], None],
        egress_network: str | None = None,
    ) -> None:
        self._client = client
        self._hardening = dict(hardening)
        self._on_start = on_start
        self._egress_network = egress_network

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_host_config(self, **kwargs: Any) -> Any:
        if kwargs.get("privileged") or kwargs.get("cap_add"):
            raise refuse("privileged/cap_add", "refused at container creation")
        return self._client.create_host_config(**{**kwargs, **self._hardening})

    def create_container(self, **kwargs: Any) -> Any:
        host_config = kwargs.get("host_config") or {}
        missing = [key for key in REQUIRED_HOST_CONFIG if not host_config.get(key)]
        network = host_config.get("NetworkMode")
        extra_networks = kwargs.get("networking_config")
        if (
            missing
            or host_config.get("Privileged")
            or extra_networks
            or not self._network_ok(network, host_config)
        ):
            raise SandboxPolicyError(
                f"refusing an unhardened container (missing {missing}, network {network!r})"
            )
        for mount in host_config.get("Mounts") or []:
            check_no_docker_socket("mounts", mount.get("Source"), mount.get("Target"))
        return self._client.create_container(**kwargs)

    def _network_ok(self, network: str | None, host_config: Mapping[str, Any]) -> bool:
        if network == "none":
            return True
        if not self._egress_network or network != self._egress_network:
            return False
        if host_config.get("Dns") != DNS_NOWHERE:
            return False
        try:
            info = self._client.inspect_network(network)
        except APIError:
            return False
        return info.get("Internal") is True and (info.get("Labels") or {}).get(EGRESS_LABEL) == "1"

    def remove_container(self, container: Any, **kwargs: Any) -> None:
        """Removal is idempotent: a container already gone (or going) after on_kill is fine."""
        try:
            self._client.remove_container(container, **kwargs)
        except APIError as exc:
            if exc.status_code not in (404, 409):
                raise

    def start(self, container: Any, *args: Any, **kwargs: Any) -> Any:
        result = self._client.start(container, *args, **kwargs)
        self._on_start(container["Id"] if isinstance(container, dict) else str(container))
        return result
