"""semgrep on the host, as tests run it: offline, as the sandbox image runs it.

Without these switches semgrep asks semgrep.dev for a newer version at start and, with no
route out, waits about 90 s for that to time out on every run; tests must not aim traffic
anywhere but loopback in any case.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SEMGREP = Path(sys.executable).with_name("semgrep")


def semgrep_scan(config: Path) -> list[str]:
    """argv of an offline ``semgrep scan`` with ``config`` and JSON output, targets to add."""
    return [
        str(SEMGREP),
        "scan",
        "--config",
        str(config),
        "--json",
        "--metrics=off",
        "--disable-version-check",
    ]


def semgrep_env() -> dict[str, str]:
    return {**os.environ, "SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off"}
