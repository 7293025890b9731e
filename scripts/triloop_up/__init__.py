"""``make up`` as a package: ``scripts/up.py`` is its entry point and describes the steps.

``plan`` builds the environment, ``preflight`` checks Docker, ports and the login, ``commands``
runs one start-up command, ``dags`` unpauses and triggers the DAGs, ``standalone`` supervises
``airflow standalone``, ``processes`` stops process groups and trees, ``steps`` runs the numbered
steps, ``summary`` prints the box at the end and ``main`` handles signals and exit codes.
"""
