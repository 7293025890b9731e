"""SandboxOperator's egress arguments and HardenedClient's network check, without an engine."""

from __future__ import annotations

from typing import Any

import pytest
from docker.errors import NotFound
from triloop_sandbox import SandboxOperator, SandboxPolicyError
from triloop_sandbox.hardening import HardenedClient

HARDENED = {
    "CapDrop": ["ALL"],
    "SecurityOpt": ["no-new-privileges:true"],
    "ReadonlyRootfs": True,
    "Tmpfs": {"/tmp": "size=1m"},
    "PidsLimit": 10,
    "NanoCpus": 1,
}


def make(**kwargs: Any) -> SandboxOperator:
    args: dict[str, Any] = {"task_id": "t", "workspace": "/w/repo", "output_dir": "/w/out"}
    return SandboxOperator(**{**args, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"egress_allowlist": ["api.openai.com"]}, r"egress_allowlist entry 'api.openai.com'"),
        ({"egress_allowlist": ["ok.example:443", "bad:0"]}, r"entry 'bad:0'.*1-65535"),
        ({"egress_allowlist": ["http://x.example:80"]}, r"entry 'http://x.example:80'"),
        ({"egress_allowlist": ["a b:80"]}, r"entry 'a b:80'"),
        ({"egress_upstream_network": "host"}, r"egress_upstream_network='host'"),
        ({"egress_max_tokens": 0}, r"egress_max_tokens=0.*positive"),
        ({"network_mode": "some-net"}, r"network_mode='some-net'.*egress_allowlist"),
    ],
)
def test_egress_arguments_are_validated(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(SandboxPolicyError, match=match):
        make(**kwargs)


def test_without_an_allowlist_the_network_stays_none() -> None:
    op = make(egress_allowlist=[], egress_max_tokens=100)
    assert op.egress_allowlist == [] and op.network_mode == "none"
    config = op.host_config_hardening
    assert config["network_mode"] == "none" and "dns" not in config and "sysctls" not in config


def test_valid_allowlist_is_kept() -> None:
    op = make(egress_allowlist=["api.openai.com:443", "10.0.0.5:8000", "[::1]:8080"])
    assert op.egress_allowlist == ["api.openai.com:443", "10.0.0.5:8000", "[::1]:8080"]
    assert op.host_config_hardening["network_mode"] == "none", "until the gateway runs"


class Engine:
    """Just enough of docker's APIClient for HardenedClient.create_container."""

    def __init__(self, networks: dict[str, dict[str, Any]]) -> None:
        self.networks = networks
        self.created: list[dict[str, Any]] = []

    def inspect_network(self, name: str) -> dict[str, Any]:
        if name not in self.networks:
            raise NotFound(f"network {name} not found")
        return self.networks[name]

    def create_container(self, **kwargs: Any) -> dict[str, str]:
        self.created.append(kwargs)
        return {"Id": "abc"}


EGRESS_NET = {"Internal": True, "Labels": {"io.triloop.egress": "1"}}


@pytest.mark.parametrize(
    ("egress_network", "network", "dns", "engine_view", "accepted"),
    [
        (None, "none", None, {}, True),
        ("net-1", "none", None, {}, True),
        ("net-1", "net-1", ["127.0.0.1"], {"net-1": EGRESS_NET}, True),
        (None, "net-1", ["127.0.0.1"], {"net-1": EGRESS_NET}, False),  # not this run's
        ("net-1", "net-2", ["127.0.0.1"], {"net-2": EGRESS_NET}, False),
        ("net-1", "net-1", None, {"net-1": EGRESS_NET}, False),  # DNS would resolve
        ("net-1", "net-1", ["127.0.0.1"], {"net-1": {**EGRESS_NET, "Internal": False}}, False),
        ("net-1", "net-1", ["127.0.0.1"], {"net-1": {"Internal": True, "Labels": {}}}, False),
        ("net-1", "net-1", ["127.0.0.1"], {}, False),  # gone
        ("net-1", "host", ["127.0.0.1"], {}, False),
        ("net-1", "bridge", ["127.0.0.1"], {}, False),
    ],
)
def test_hardened_client_accepts_only_none_or_this_runs_egress_network(
    egress_network: str | None,
    network: str,
    dns: list[str] | None,
    engine_view: dict[str, dict[str, Any]],
    accepted: bool,
) -> None:
    engine = Engine(engine_view)
    client = HardenedClient(engine, {}, lambda _: None, egress_network)
    host_config = {**HARDENED, "NetworkMode": network, **({"Dns": dns} if dns else {})}
    if accepted:
        client.create_container(host_config=host_config)
        assert len(engine.created) == 1
    else:
        with pytest.raises(SandboxPolicyError, match=rf"unhardened container.*{network!r}"):
            client.create_container(host_config=host_config)
        assert engine.created == []


def test_hardened_client_refuses_extra_networks_at_creation() -> None:
    client = HardenedClient(Engine({}), {}, lambda _: None)
    with pytest.raises(SandboxPolicyError, match="unhardened container"):
        client.create_container(
            host_config={**HARDENED, "NetworkMode": "none"},
            networking_config={"EndpointsConfig": {"other": {}}},
        )
