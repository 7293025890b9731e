"""The forge policy (``repos.<id>.forge``): local by default, GitHub with a repo and a safe URL."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from triloop.domain.forge_policy import ForgePolicy
from triloop.domain.policy import Policy


def test_the_default_is_the_local_forge() -> None:
    assert Policy.model_validate({"repos": {"r": {}}}).repos["r"].forge == ForgePolicy()
    assert ForgePolicy().kind == "local"


def test_a_github_forge() -> None:
    doc = {"kind": "github", "conn_id": "gh_app", "repo": "acme/app"}
    forge = Policy.model_validate({"repos": {"r": {"forge": doc}}}).repos["r"].forge
    assert (forge.kind, forge.conn_id, forge.repo, forge.clone_url) == (
        "github",
        "gh_app",
        "acme/app",
        None,
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"kind": "gitlab"}, "forge kind 'gitlab' is not one of"),
        ({"kind": "github"}, "a github forge needs repo: owner/name, not None"),
        ({"kind": "github", "repo": "acme"}, "needs repo: owner/name, not 'acme'"),
        (
            {"kind": "github", "repo": "a/b", "clone_url": "git@github.com:a/b.git"},
            "must be an http\\(s\\) URL or an absolute path",
        ),
        (
            {"kind": "github", "repo": "a/b", "clone_url": "https://x:ghp_1@github.com/a/b.git"},
            "must not carry credentials",
        ),
        ({"kind": "github", "repo": "a/b", "token": "ghp_1"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_forge_policies_are_refused(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Policy.model_validate({"repos": {"r": {"forge": doc}}})
