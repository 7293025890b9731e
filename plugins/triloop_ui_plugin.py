"""Registers Triloop's page with Airflow: the status app under ``/triloop`` and a Browse entry.

Airflow's plugin manager loads this file as the top-level module ``triloop_ui_plugin`` (by its
stem; the packages beside it are in ``.airflowignore``, so each of their modules is imported
once, by its package name). Importing it is cheap: the app is built on its first request.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from triloop_airflow.ui import EXTERNAL_VIEW, NAME, URL_PREFIX, StatusApp


class TriloopUIPlugin(AirflowPlugin):
    name = "triloop"
    fastapi_apps = [{"app": StatusApp(), "url_prefix": URL_PREFIX, "name": NAME}]
    external_views = [EXTERNAL_VIEW]
