"""The merged environment's SBOM: read what the sandbox wrote, store it with the decision.

The sandbox's ``scan`` writes ``sbom.cdx.json`` (CycloneDX 1.6 JSON, cyclonedx-py, reproducible
output: no timestamp or serial number) for the environment the merged tree's declared
dependencies install into; an empty venv's when it declares none. Governance copies it to
``<artifacts_dir>/governance/<repo>/<pr>/<head_sha>/sbom.cdx.json`` and references it from the
decision by path and sha256. Copying is idempotent: the same bytes are never written twice, and
a different SBOM for the same head (its dependencies' wheels changed) is stored beside the
first under its own digest, so a path an older decision names never changes its content.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triloop.domain.contracts import ArtifactRef
from triloop.sandbox_files import SandboxFileError, read_sandbox_file

REPORT = "sbom.cdx.json"
KIND = "sbom-cyclonedx-json"
MAX_BYTES = 64 << 20
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class SbomError(ValueError):
    """The SBOM is missing or not a CycloneDX JSON document; the message names the file."""


@dataclass(frozen=True)
class Sbom:
    """A parsed SBOM: its bytes' digest and its components as ``name==version``."""

    data: bytes
    spec_version: str
    components: list[str]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def read_sbom(path: Path) -> Sbom:
    """Parse ``path`` as a CycloneDX JSON BOM (untrusted: written by the sandbox)."""
    try:
        data = read_sandbox_file(path, MAX_BYTES)
    except FileNotFoundError as exc:
        raise SbomError(f"SBOM {path} is missing") from exc
    except SandboxFileError as exc:
        raise SbomError(f"SBOM {exc}") from exc
    except OSError as exc:
        raise SbomError(f"SBOM {path} cannot be read: {exc}") from exc
    try:
        doc: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SbomError(f"SBOM {path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise SbomError(f"SBOM {path} is not a CycloneDX document (bomFormat is not CycloneDX)")
    spec = doc.get("specVersion")
    components = doc.get("components", [])
    if not isinstance(spec, str) or not isinstance(components, list):
        raise SbomError(f"SBOM {path}: specVersion or components is malformed")
    names = []
    for item in components:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise SbomError(f"SBOM {path}: malformed component {item!r}"[:300])
        version = item.get("version")
        names.append(f"{item['name']}=={version}" if isinstance(version, str) else item["name"])
    return Sbom(data=data, spec_version=spec, components=sorted(names))


def artifact_dir(artifacts: Path, repo_id: str, number: int, head_sha: str) -> Path:
    """``<artifacts>/governance/<repo>/<pr>/<head_sha>``; refuses ids that are not plain names."""
    for what, value in (("repository id", repo_id), ("head sha", head_sha)):
        if not _SAFE.fullmatch(value) or ".." in value:
            raise SbomError(f"{what} {value!r} cannot name an artifact directory")
    return artifacts / "governance" / repo_id / str(number) / head_sha


def store(sbom: Sbom, folder: Path) -> ArtifactRef:
    """Write ``sbom`` under ``folder`` once; the reference to the stored file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / REPORT
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() != sbom.sha256:
        target = folder / f"sbom.{sbom.sha256[:16]}.cdx.json"
    if not (target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sbom.sha256):
        partial = folder / f".{target.name}.{os.getpid()}.partial"
        partial.write_bytes(sbom.data)
        partial.chmod(0o444)
        os.replace(partial, target)
    return ArtifactRef(kind=KIND, path=str(target), sha256=sbom.sha256)
