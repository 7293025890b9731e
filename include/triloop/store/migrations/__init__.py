"""Alembic migrations of Triloop's own database; run them through :mod:`triloop.store.schema`.

A package (not a bare folder) so setuptools ships ``env.py`` and ``versions/`` with ``triloop``.
"""
