"""Governance's environment checks on a real sandbox scan of a pull request's trees.

A PR opened by the autofix harness gets a requirements.txt pinning a GPL-3.0 package and a
package an advisory (an OSV record the test writes) covers. Governance prepares the review,
which stages each tree's wheelhouse with the real ``pip download`` from wheels the test builds
(PIP_NO_INDEX/PIP_FIND_LINKS: nothing leaves the machine); the real sandbox image runs ``scan``
hardened on the base and merged trees (pip-licenses and cyclonedx-py on the installed
environment); the decision is blocked by the licenses and vulnerabilities checks and carries
the merged environment's SBOM as an artifact.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import docker
import pytest
from sqlalchemy import select
from triloop.bootstrap import App
from triloop.domain.contracts import ReviewRequest
from triloop.store.models import CheckRun, DecisionRow

from tests.integration.conftest import HARDENED_RUN
from tests.integration.test_control_plane import _actor, _pr_for_first_ticket
from tests.integration.test_governance_trust import _push_to_pr
from tests.support.review_outputs import reproduce_on_host, write_reports
from tests.support.wheels import make_wheel

pytestmark = pytest.mark.docker

GPL = "License :: OSI Approved :: GNU General Public License v3 (GPLv3)"
MIT = "License :: OSI Approved :: MIT License"
ADVISORY = {
    "id": "TRILOOP-GOV-0001",
    "summary": "oldlib evaluates its config file (fixture)",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "oldlib"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]}],
        }
    ],
}


@pytest.fixture
def env_app(app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    """The app under a policy denying GPL-* with the test's advisory database; local wheels."""
    from triloop.domain.policy import RepoPolicy

    wheels = tmp_path / "local-wheels"
    make_wheel(wheels, "gplkit", "1.0.0", license_classifier=GPL, module="X = 1\n")
    make_wheel(wheels, "oldlib", "1.0.0", license_classifier=MIT, module="Y = 2\n")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    osv = tmp_path / "osv"
    osv.mkdir()
    (osv / "TRILOOP-GOV-0001.json").write_text(json.dumps(ADVISORY))
    policy = app.policy.model_copy(
        update={
            "host_scanners": app.policy.host_scanners.model_copy(update={"osv_database": str(osv)}),
            "code_scans": app.policy.code_scans.model_copy(
                update={
                    "licenses": app.policy.code_scans.licenses.model_copy(
                        update={"deny": ["GPL-*"]}
                    )
                }
            ),
        }
    )
    policy.repos["sample"] = RepoPolicy(autonomy_level=3)
    return App(settings=app.settings, policy=policy)


def _scan(client: docker.DockerClient, image: str, workspace: str, out: str) -> dict[str, Any]:
    """``triloop-harness analyze`` hardened on one prepared tree; its result.json."""
    container = client.containers.run(
        image,
        ["analyze", "--out", "/out"],
        detach=True,
        volumes={
            workspace: {"bind": "/workspace", "mode": "ro"},
            out: {"bind": "/out", "mode": "rw"},
        },
        labels={"io.triloop.sandbox": "1", "io.triloop.test": "governance-environment"},
        **HARDENED_RUN,
    )
    try:
        code = int(container.wait(timeout=600)["StatusCode"])
        logs = container.logs(stdout=True, stderr=True).decode()
    finally:
        container.remove(force=True)
    assert code == 0, logs
    result: dict[str, Any] = json.loads(Path(out, "result.json").read_text())
    return result


def _review(
    app: App, tmp: Path, client: docker.DockerClient, image: str, reqs: str
) -> ReviewRequest:
    from triloop.governance.service import prepare_review, select_reviews

    repo_id, number = _pr_for_first_ticket(app, tmp)
    _push_to_pr(app, tmp, number, {"requirements.txt": reqs})
    reviewer = _actor("gov-1", "decide")
    assert select_reviews(app, reviewer) == [{"repo_id": repo_id, "number": number}]
    review = prepare_review(app, repo_id, number, reviewer)
    for workspace, out in (
        (review.base_workspace, review.base_out),
        (review.merged_workspace, review.merged_out),
    ):
        _scan(client, image, workspace, out)
    checks = {
        "check_id": "tests",
        "status": "passed",
        "command": "python -m pytest -q",
        "excerpt": "ok",
    }
    Path(review.tests_out, "checks.json").write_text(json.dumps({"checks": [checks]}))
    write_reports(review)
    reproduce_on_host(review)
    return review


def _rows(app: App) -> dict[str, CheckRun]:
    with app.uow() as session:
        return {r.check_id: r for r in session.scalars(select(CheckRun)).all()}


def test_a_gpl_dependency_and_a_vulnerable_pin_are_blocked_and_the_sbom_is_stored(
    env_app: App, tmp_path: Path, docker_client: docker.DockerClient, sandbox_image: str
) -> None:
    from triloop.governance.service import decide

    reqs = "gplkit==1.0.0\noldlib==1.0.0\n"
    review = _review(env_app, tmp_path, docker_client, sandbox_image, reqs)
    base = json.loads(Path(review.base_out, "result.json").read_text())["tools"]
    assert base["licenses"]["skipped"].startswith("no wheelhouse")  # the base declares none
    empty = json.loads(Path(review.base_out, "sbom.cdx.json").read_text())
    assert empty["bomFormat"] == "CycloneDX" and empty.get("components", []) == []

    decision = decide(env_app, review, _actor("gov-1", "decide"))
    assert decision.outcome == "blocked"
    rows = _rows(env_app)
    licenses, vulns, sbom = rows["licenses"], rows["vulnerabilities"], rows["sbom"]
    assert (licenses.status, licenses.rule_ids) == ("failed", ["license-denied"])
    assert "gplkit 1.0.0 is licensed GNU General Public License v3 (GPLv3)" in licenses.excerpt
    assert "oldlib" not in licenses.excerpt
    assert (vulns.status, vulns.rule_ids) == ("failed", ["TRILOOP-GOV-0001"])
    assert "requirements.txt:2: oldlib 1.0.0: TRILOOP-GOV-0001" in vulns.excerpt
    assert "2 declared dependencies checked" in vulns.excerpt
    assert vulns.command.startswith(f"TRILOOP_POLICY_PATH={env_app.settings.policy_path} python -m")

    [artifact] = decision.artifacts
    stored = Path(artifact.path)
    folder = env_app.settings.artifacts_dir / "governance" / review.repo_id / str(review.number)
    assert stored == folder / review.head_sha / "sbom.cdx.json"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == artifact.sha256
    bom = json.loads(stored.read_text())
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.6")
    assert {(c["name"], c["version"]) for c in bom["components"]} == {
        ("gplkit", "1.0.0"),
        ("oldlib", "1.0.0"),
    }  # the toolchain (pytest, pip-licenses, cyclonedx) is not part of the environment
    assert (
        sbom.status == "passed"
        and artifact.path in sbom.excerpt
        and artifact.sha256 in sbom.excerpt
    )
    assert "2 component(s): gplkit==1.0.0, oldlib==1.0.0" in sbom.excerpt

    assert decide(env_app, review, _actor("gov-1", "decide")) == decision  # cleared and re-run
    assert [p.name for p in stored.parent.iterdir()] == ["sbom.cdx.json"]
    with env_app.uow() as session:
        [row] = session.scalars(select(DecisionRow)).all()
        assert row.artifacts == [artifact.model_dump(mode="json")]


def test_a_wheelhouse_the_host_cannot_download_is_an_error_on_that_pr(
    env_app: App, tmp_path: Path, docker_client: docker.DockerClient, sandbox_image: str
) -> None:
    from triloop.governance.service import decide

    review = _review(env_app, tmp_path, docker_client, sandbox_image, "nosuchpkg==9.9\n")
    assert Path(review.merged_out, "wheelhouse", "error.txt").is_file()
    decision = decide(env_app, review, _actor("gov-1", "decide"))
    assert decision.outcome == "blocked" and decision.artifacts == []
    rows = _rows(env_app)
    assert rows["licenses"].status == "error" and rows["sbom"].status == "error"
    assert "the host could not prepare it: pip download failed" in rows["licenses"].excerpt
    assert "no environment: the host could not prepare it" in rows["sbom"].excerpt
    assert rows["vulnerabilities"].status == "passed"  # nothing the advisories know about
