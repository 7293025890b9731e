"""Where Triloop keeps its files and how it reaches its database.

Everything is resolved when asked for, never at import time, so a DAG file that imports this
module reads no environment while it is parsed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The checkout Triloop runs from (holds include/, dags/, plugins/)."""


@dataclass(frozen=True)
class Settings:
    """Paths and names the control plane needs; built by :func:`load_settings`."""

    home: Path
    db_url: str
    sandbox_image: str
    policy_path: Path

    @property
    def forge_dir(self) -> Path:
        """Bare repositories of the local forge (one per onboarded repo)."""
        return self.home / "forge"

    @property
    def workspaces_dir(self) -> Path:
        """Per-run checkouts mounted into sandboxes; the sandbox workspace root."""
        return self.home / "workspaces"

    @property
    def mirrors_dir(self) -> Path:
        """Long-lived clones the control plane updates and reads on the host."""
        return self.home / "mirrors"

    @property
    def artifacts_dir(self) -> Path:
        """Files stored with decisions (SBOMs), referenced from them by path and sha256."""
        return self.home / "artifacts"


def load_settings(db_url: str | None = None, home: Path | None = None) -> Settings:
    """Build settings from explicit values, then TRILOOP_* variables, then defaults."""
    base = home or Path(os.environ.get("TRILOOP_HOME") or Path.home() / ".triloop")
    base = base.resolve()
    url = db_url or os.environ.get("TRILOOP_DB_URL") or f"sqlite:///{base / 'triloop.db'}"
    image = os.environ.get("TRILOOP_SANDBOX_IMAGE", "triloop-sandbox:latest")
    policy = Path(
        os.environ.get("TRILOOP_POLICY_PATH") or PROJECT_ROOT / "include/policy/default.yaml"
    )
    return Settings(home=base, db_url=url, sandbox_image=image, policy_path=policy)
