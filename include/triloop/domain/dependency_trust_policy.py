"""Policy for governance's dependency trust check (``dependency_trust`` in the policy file).

The check looks at every requirement a pull request adds or changes. The typosquat, pin and
semver rules need nothing but the two trees; existence and release age need a package index
(this model's ``package_index``, else ``host_scanners.package_index``; with neither they are
skipped and the evidence says so).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DependencyTrustPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=True, description="Run the dependency trust check on each PR")
    package_index: str | None = Field(
        default=None,
        description="PEP 503/691 simple index base URL (https://, http:// or file://); None: the"
        " policy's host_scanners.package_index; neither: existence and release age are skipped",
    )
    max_edit_distance: int = Field(
        default=2,
        ge=0,
        le=3,
        description="Most edits (Damerau-Levenshtein) between a new name and a known one for it"
        " to count as a typosquat (1 for names under 9 characters, never for names under 5)",
    )
    require_pins: bool = Field(default=True, description="Added or changed requirements use ==")
    allow_major_upgrades: bool = Field(
        default=False, description="A changed pin may move to another major version"
    )
    min_release_age_days: float = Field(
        default=7.0,
        ge=0,
        description="Days since the pinned release was uploaded (PEP 700 upload-time, from the"
        " index's PEP 691 JSON); 0: not checked. An index that serves no upload times fails it",
    )
    extra_popular_names: list[str] = Field(
        default_factory=list,
        description="Names added to the shipped popular-names list (e.g. your private packages)",
    )
    allowed_names: list[str] = Field(
        default_factory=list,
        description="Names trusted as they are: never a typosquat, even close to a popular one",
    )

    @field_validator("package_index")
    @classmethod
    def _index_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https", "file"):
            raise ValueError(f"package_index {value!r} must be an http(s):// or file:// URL")
        return value
