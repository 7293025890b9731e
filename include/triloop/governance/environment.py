"""Governance's environment checks: vulnerabilities, licenses and the SBOM of what lands.

Each is diff-aware where it gates: a PR answers for what it adds, not for what the base had.

- ``vulnerabilities``: the merged tree's declared dependencies against the policy's OSV database
  (``host_scanners.osv_database``, the one discovery uses; triloop.discovery.scanners.osv);
  advisories the base's dependencies did not already have fail it, rule ids = advisory ids.
  With no database configured it passes, saying nothing was checked.
- ``licenses``: pip-licenses' list of the merged environment (the sandbox's ``scan`` installs
  the declared dependencies from the host's wheelhouse) against ``code_scans.licenses``;
  packages denied (``license-denied``) or not allowed (``license-not-allowed``) that the base
  environment did not already have that way fail it; a failed install or pip-licenses run is
  an ``error``.
- ``sbom``: the merged environment's CycloneDX SBOM, stored with the decision
  (triloop.governance.sbom); ``error`` when it is missing or not a CycloneDX document.

``licenses`` and ``sbom`` apply when the sandbox that wrote the scan reported those tools.
Reproduce: ``TRILOOP_POLICY_PATH=<policy> python -m triloop.governance.environment CHECK BASE
MERGED BASE_OUT MERGED_OUT`` (the checkouts and the sandbox scan's output directories).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from triloop.domain.contracts import ArtifactRef, CheckResult, ReviewRequest, ScanRequest
from triloop.domain.policy import Policy
from triloop.governance.audits import Trees, licenses, sbom, tool_reported, vulnerabilities

if TYPE_CHECKING:
    from triloop.bootstrap import App

CHECKS = ("vulnerabilities", "licenses", "sbom")


@dataclass(frozen=True)
class EnvironmentEvidence:
    """What the environment checks give a decision: their results and the stored SBOM."""

    checks: list[CheckResult] = field(default_factory=list)
    artifacts: list[ArtifactRef] = field(default_factory=list)


def run(
    trees: Trees, policy: Policy, policy_path: Path | None, artifacts: Path | None = None
) -> EnvironmentEvidence:
    """The three checks on one review's trees; the SBOM stored under ``artifacts`` when given."""
    checks = [vulnerabilities(trees, policy, trees.command("vulnerabilities", policy_path))]
    listed = licenses(trees, policy, trees.command("licenses", policy_path))
    checks += [listed] if listed is not None else []
    if tool_reported(trees.merged_out, "sbom") is None:
        return EnvironmentEvidence(checks)  # this sandbox wrote no SBOM (an older image)
    result, ref = sbom(trees, artifacts, trees.command("sbom", policy_path))
    return EnvironmentEvidence([*checks, result], [ref] if ref else [])


def environment_checks(app: App, review: ReviewRequest) -> EnvironmentEvidence:
    """Governance's call: the checks and the stored SBOM for one prepared review."""
    trees = Trees(
        Path(review.base_workspace),
        Path(review.merged_workspace),
        Path(review.base_out),
        Path(review.merged_out),
        review.repo_id,
        review.number,
        review.head_sha,
    )
    return run(trees, app.policy, app.settings.policy_path, app.settings.artifacts_dir)


def stage_wheelhouses(app: App, repo_id: str, *trees: tuple[Path, Path, str]) -> None:
    """Stage each (checkout, scan output, sha)'s dependency wheelhouse: discovery's step.

    Downloads are cached by requirements hash; a failure leaves ``error.txt`` in the wheelhouse,
    which the sandbox reports and this PR's licenses and sbom checks turn into ``error``.
    """
    from triloop.discovery.wheelhouse import stage_wheelhouse

    for checkout, out, sha in trees:
        request = ScanRequest(
            repo_id=repo_id, head_sha=sha, workspace=str(checkout), output_dir=str(out)
        )
        stage_wheelhouse(app, request)


def main(argv: list[str] | None = None) -> int:
    """Rerun one check on two checkouts and their scan outputs; exit 1 unless passed."""
    from triloop.config import load_settings
    from triloop.domain.policy import load_policy

    parser = argparse.ArgumentParser(prog="python -m triloop.governance.environment")
    parser.add_argument("check", choices=CHECKS)
    for name in ("base", "merged", "base_out", "merged_out"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    settings = load_settings()
    policy = load_policy(settings.policy_path)
    trees = Trees(args.base, args.merged, args.base_out, args.merged_out)
    command = trees.command(args.check, settings.policy_path)
    if args.check == "vulnerabilities":
        result: CheckResult | None = vulnerabilities(trees, policy, command)
    elif args.check == "licenses":
        result = licenses(trees, policy, command)
    else:
        result = sbom(trees, None, command)[0]
    if result is None:
        print(f"{args.base_out}/result.json: the sandbox did not run pip-licenses")
        return 1
    print(json.dumps(result.model_dump(mode="json"), indent=2))
    return 0 if result.status == "passed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
