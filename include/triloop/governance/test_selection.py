"""The check request the host leaves for the sandbox's ``check``: which tests to run.

Governance writes the pre-merge selection into its tests output directory, post-merge
verification the post-merge one (policy ``test_suites``); ``triloop-harness check`` reads
``/out/check-request.json`` and passes its ``pytest_args`` to pytest. The file is written
before the sandbox runs and rewritten identically by a re-run, so a cleared task changes
nothing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from triloop.domain.test_suite_policy import CHECK_REQUEST, Suite, TestSuitePolicy

log = logging.getLogger(__name__)


def write_check_request(out: Path, policy: TestSuitePolicy, suite: Suite) -> Path:
    """Write ``check-request.json`` (schema_version 1) into ``out``; return its path."""
    path = out / CHECK_REQUEST
    request = policy.request(suite)
    temp = out / f".{CHECK_REQUEST}.tmp"
    temp.write_text(json.dumps(request, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temp.chmod(0o644)  # the sandbox's non-root user reads it
    temp.replace(path)  # whoever owns an earlier copy, this one wins
    log.info("%s suite for %s: pytest args %s", suite, out, request["pytest_args"])
    return path
