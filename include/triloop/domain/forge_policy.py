"""Where a repository's branches and pull requests live (``repos.<id>.forge`` in the policy).

``local`` (the default) is the embedded forge: the bare repository Triloop onboarded, pull
requests in Triloop's database. ``github`` is a GitHub repository reached through an Airflow
GitHub connection (a token or a GitHub App installation, read by the providers-github hook at
run time); branches are pushed to ``clone_url`` over HTTPS with that connection's token.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

KINDS = ("local", "github")


class ForgePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(default="local", description="local (bare repo, PRs in the DB) or github")
    conn_id: str = Field(
        default="github_default", description="Airflow GitHub connection (token or GitHub App)"
    )
    repo: str | None = Field(default=None, description="owner/name of the GitHub repository")
    clone_url: str | None = Field(
        default=None,
        description="Where branches are pushed (HTTPS, no credentials in it);"
        " None: https://github.com/{repo}.git",
    )

    @model_validator(mode="after")
    def _github_needs_repo(self) -> ForgePolicy:
        if self.kind not in KINDS:
            raise ValueError(f"forge kind {self.kind!r} is not one of {list(KINDS)}")
        if self.kind == "github" and not re.fullmatch(r"[\w.-]+/[\w.-]+", self.repo or ""):
            raise ValueError(f"a github forge needs repo: owner/name, not {self.repo!r}")
        url = self.clone_url
        if url is not None and not re.match(r"(https?://|/)", url):
            raise ValueError(f"forge clone_url {url!r} must be an http(s) URL or an absolute path")
        if url is not None and re.match(r"https?://[^/]*@", url):
            raise ValueError(
                "forge clone_url must not carry credentials: the token comes from the connection"
            )
        return self
