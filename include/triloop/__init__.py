"""Triloop: an autonomous software factory run by Apache Airflow.

The control plane lives here and imports nothing from Airflow at module top level, so the
DAGs, the tests and the ``triloop`` CLI can all use it.
"""

from __future__ import annotations

__version__ = "0.1.0"
