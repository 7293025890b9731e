"""Airflow-facing glue for Triloop: assets, DAG defaults, runtime wiring, HITL operator."""
