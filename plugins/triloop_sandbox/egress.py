"""EgressGateway: an internal network whose only way out is an allowlisting proxy, per run.

For one sandbox run the gateway creates an internal Docker network (no route off it, and with
``inhibit_ipv4`` not even the host's bridge address on it), starts ``triloop-egress-proxy`` from
the sandbox image on that network and on an upstream network, and removes both however the run
ends. The sandbox joins only the internal network, with the proxy's IP in its proxy variables
and a DNS server that answers nothing. The proxy writes its meter to
``<output_dir>/egress/usage.json`` (bind-mounted at /egress in the proxy, read-only in the
sandbox so the untrusted run cannot rewrite it).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from airflow.sdk.exceptions import AirflowException
from docker.errors import APIError, NotFound
from docker.types import Mount

from triloop_sandbox.exceptions import SandboxPolicyError

log = logging.getLogger(__name__)
EGRESS_LABEL = "io.triloop.egress"
NETWORK_LABEL = "io.triloop.egress.network"  # on the proxy: the internal network it serves
DEFAULT_UPSTREAM = "triloop-egress-upstream"
PROXY_PORT = 3128
PROXY_USER = "10001:10001"
METER_FILE = "usage.json"
DNS_NOWHERE = ["127.0.0.1"]  # nothing listens there: the sandbox resolves no outside name
READY_TIMEOUT_S = 30.0
HOST_PORT = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$")


class SandboxEgressError(AirflowException):
    """The egress proxy or its network could not be set up; no sandbox was started.

    Transient from Airflow's point of view (the task's ``retries`` apply): an engine hiccup or
    a slow start. A missing ``egress_upstream_network`` is a SandboxPolicyError instead.
    """

    def __init__(self, message: str, *, network: str, logs: list[str] | None = None) -> None:
        super().__init__(message)
        self.network = network
        self.logs = logs or []


def check_allowlist(entries: list[str] | None) -> list[str]:
    """The allowlist as given; SandboxPolicyError naming the first entry that is not host:port."""
    checked = []
    for entry in entries or []:
        match = HOST_PORT.match(entry) if isinstance(entry, str) else None
        if match is None or not 0 < int(match.group(1)) < 65536:
            raise SandboxPolicyError(
                f"SandboxOperator refuses egress_allowlist entry {entry!r}: it must be"
                " host:port (a DNS name, IPv4 address or [IPv6] address, and a port 1-65535)",
                argument="egress_allowlist",
            )
        checked.append(entry)
    return checked


def meter_dir(output_dir: str) -> Path:
    """``<output_dir>/egress``, created with output_dir's owner and mode; never a symlink."""
    top = Path(output_dir)
    path = top / "egress"
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise SandboxPolicyError(
            f"refusing egress meter directory {path}: it is a symlink or not a directory",
            argument="output_dir",
        )
    path.mkdir(exist_ok=True)
    info = top.stat()
    if os.geteuid() == 0:
        os.chown(path, info.st_uid, info.st_gid)
    path.chmod(info.st_mode & 0o7777)
    return path


class EgressGateway:
    """The egress network and proxy of one sandbox run; use as ``with EgressGateway(...) as g``."""

    def __init__(
        self,
        client: Any,
        *,
        image: str,
        allowlist: list[str],
        output_dir: str,
        labels: dict[str, str],
        upstream_network: str | None = None,
        max_tokens: int | None = None,
        log_config: Any = None,
    ) -> None:
        self.client = client  # docker.APIClient
        self.log_config = log_config  # the sandbox's: the proxy logs a line per request
        self.image = image
        self.allowlist = check_allowlist(allowlist)
        self.meter_dir = meter_dir(output_dir)
        self.labels = {k: v for k, v in labels.items() if k != "io.triloop.sandbox"}
        self.labels[EGRESS_LABEL] = "1"
        self.upstream_network = upstream_network or DEFAULT_UPSTREAM
        self.max_tokens = max_tokens
        token = uuid.uuid4().hex[:12]
        self.network = f"triloop-egress-{token}"
        self.proxy_name = f"triloop-egress-proxy-{token}"
        self.proxy_id: str | None = None
        self.proxy_ip: str | None = None
        self._network_created = False

    @property
    def meter_path(self) -> Path:
        return self.meter_dir / METER_FILE

    @property
    def proxy_environment(self) -> dict[str, str]:
        if self.proxy_ip is None:
            raise SandboxEgressError("the egress proxy is not running", network=self.network)
        url = f"http://{self.proxy_ip}:{PROXY_PORT}"
        names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
        return {**dict.fromkeys(names, url), "NO_PROXY": "", "no_proxy": ""}

    def usage(self) -> dict[str, Any] | None:
        """The proxy's meter (see triloop-egress-proxy), or None if it wrote none."""
        try:
            return dict(json.loads(self.meter_path.read_text()))
        except (OSError, ValueError):
            return None

    def __enter__(self) -> EgressGateway:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        self._ensure_upstream()
        self.client.create_network(
            self.network,
            driver="bridge",
            internal=True,
            labels=self.labels,
            options={"com.docker.network.bridge.inhibit_ipv4": "true"},
            check_duplicate=True,
        )
        self._network_created = True
        args = [f"--listen=0.0.0.0:{PROXY_PORT}", f"--meter-file=/egress/{METER_FILE}"]
        args += [f"--allow={entry}" for entry in self.allowlist]
        if self.max_tokens is not None:
            args.append(f"--max-tokens={self.max_tokens}")
        container = self.client.create_container(
            image=self.image,
            entrypoint=["triloop-egress-proxy"],
            command=args,
            name=self.proxy_name,
            user=PROXY_USER,
            labels={**self.labels, NETWORK_LABEL: self.network},
            host_config=self.client.create_host_config(
                network_mode=self.network,
                privileged=False,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                read_only=True,
                tmpfs={"/tmp": "rw,nosuid,nodev,noexec,size=16m,mode=1777"},
                pids_limit=512,  # a thread per connection, two per tunnel
                mem_limit="256m",
                memswap_limit="256m",
                nano_cpus=500_000_000,
                mounts=[Mount("/egress", str(self.meter_dir), type="bind", read_only=False)],
                log_config=self.log_config,
            ),
        )
        self.proxy_id = container["Id"]
        self.client.connect_container_to_network(self.proxy_id, self.upstream_network)
        self.client.start(self.proxy_id)
        self._wait_ready()
        networks = self.client.inspect_container(self.proxy_id)["NetworkSettings"]["Networks"]
        self.proxy_ip = (networks.get(self.network) or {}).get("IPAddress") or None
        if not self.proxy_ip:
            raise SandboxEgressError(
                "the egress proxy got no address on its network", network=self.network
            )
        log.info(
            "Egress proxy %s at %s:%s on %s (upstream %s) allows %s",
            self.proxy_name,
            self.proxy_ip,
            PROXY_PORT,
            self.network,
            self.upstream_network,
            ", ".join(self.allowlist),
        )

    def _ensure_upstream(self) -> None:
        found = self.client.networks(names=[self.upstream_network])
        if any(n.get("Name") == self.upstream_network for n in found):
            return
        if self.upstream_network != DEFAULT_UPSTREAM:
            raise SandboxPolicyError(
                f"egress_upstream_network {self.upstream_network!r} does not exist",
                argument="egress_upstream_network",
            )
        try:  # the project-managed upstream: an ordinary (routed) bridge network
            self.client.create_network(
                DEFAULT_UPSTREAM,
                driver="bridge",
                labels={"io.triloop.egress.upstream": "1"},
                check_duplicate=True,
            )
        except APIError as exc:
            if exc.status_code != 409:  # a parallel run created it first
                raise

    def _wait_ready(self) -> None:
        """Wait for the proxy's "listening on" log line (works against a remote engine too)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            logs = self.client.logs(self.proxy_id, stdout=True, stderr=True).decode(
                "utf-8", "replace"
            )
            if "listening on" in logs:
                return
            state = self.client.inspect_container(self.proxy_id).get("State") or {}
            if not state.get("Running"):
                raise SandboxEgressError(
                    f"the egress proxy exited ({state.get('ExitCode')}) before listening",
                    network=self.network,
                    logs=logs.splitlines()[-30:],
                )
            time.sleep(0.05)
        raise SandboxEgressError(
            f"the egress proxy did not listen within {READY_TIMEOUT_S:.0f}s", network=self.network
        )

    def close(self) -> None:
        """Remove the proxy and the internal network; idempotent, never raises on cleanup."""
        if self.proxy_id is not None:
            try:
                self.client.remove_container(self.proxy_id, force=True)
            except NotFound:
                pass
            except APIError as exc:
                log.warning("Could not remove egress proxy %s: %s", self.proxy_name, exc)
            self.proxy_id = self.proxy_ip = None
        if self._network_created:
            remove_network(self.client, self.network)
            self._network_created = False


def remove_network(client: Any, network: str) -> bool:
    """Disconnect whatever is still attached (a sandbox whose removal failed), then remove."""
    try:
        attached = client.inspect_network(network).get("Containers") or {}
        for container_id in attached:
            client.disconnect_container_from_network(container_id, network, force=True)
        client.remove_network(network)
    except NotFound:
        return False
    except APIError as exc:
        log.warning("Could not remove egress network %s: %s", network, exc)
        return False
    return True
