"""A self-hosted platform sends nothing out by default.

MLflow collects usage data in every process that imports it (client, server and UI) unless
``MLFLOW_DISABLE_TELEMETRY`` (or ``DO_NOT_TRACK``) says otherwise; Ray collects usage stats
unless ``RAY_USAGE_STATS_ENABLED=0``. Importing rlfleet sets both off in this process's
environment, where the user has not set them, so every process rlfleet starts (nodes, jobs,
the tracking server, the UI) inherits them; processes started elsewhere (on another host, by
Ray) get :func:`telemetry_env` explicitly. To send MLflow's usage data, set
``MLFLOW_DISABLE_TELEMETRY=false`` where you run rlfleet. Ray's usage stats stay off on the
clusters rlfleet starts.
"""

from __future__ import annotations

import os

OFF_BY_DEFAULT = {"MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0"}


def telemetry_env() -> dict[str, str]:
    """The telemetry settings of this process (rlfleet's defaults where the user set none),
    for processes that do not inherit its environment."""
    return {key: os.environ.get(key, default) for key, default in OFF_BY_DEFAULT.items()}


for _key, _default in OFF_BY_DEFAULT.items():
    os.environ.setdefault(_key, _default)
