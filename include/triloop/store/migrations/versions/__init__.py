"""One module per revision, named ``<rev>_<slug>.py``; Alembic skips this file."""
