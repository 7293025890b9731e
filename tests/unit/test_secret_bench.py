"""The secrets benchmark's corpus through the sandbox scanner and semgrep's secret rules.

The same measurement as ``python -m tests.bench.bench_secrets`` (untimed): every real secret
shape found on its line under its rule, at most one look-alike reported, and no two distinct
secrets sharing a fingerprint (governance compares base and merged trees by fingerprint).
"""

from __future__ import annotations

import pytest

from tests.bench.bench_secrets import MAX_FALSE_POSITIVES, SEMGREP, Result, measure
from tests.bench.secret_corpus import corpus


@pytest.fixture(scope="module")
def result() -> Result:
    if not SEMGREP.exists():
        pytest.fail(f"semgrep is not installed at {SEMGREP}: governance runs both")
    return measure(use_semgrep=True)


def test_the_corpus_is_as_large_as_the_issue_asks() -> None:
    real, lookalikes = corpus()
    assert len(real) >= 30 and len(lookalikes) >= 30
    assert len({c.path for c in [*real, *lookalikes]}) == len(real) + len(lookalikes)


def test_recall_is_complete(result: Result) -> None:
    assert result.missed == [] and result.recall == 1.0


def test_at_most_one_false_positive(result: Result) -> None:
    assert len(result.false_positives) <= MAX_FALSE_POSITIVES, result.false_positives


def test_rules_and_fingerprints_tell_the_secrets_apart(result: Result) -> None:
    assert result.wrong_rule == [] and result.shared_fingerprint == []
