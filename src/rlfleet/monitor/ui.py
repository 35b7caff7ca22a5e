"""``rlfleet ui``: MLflow's own UI over the workspace's store, on 127.0.0.1 by default."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from rlfleet.tracking.store import RUNS_VIEW_KEY

if TYPE_CHECKING:
    from rlfleet.workspace import Workspace

DEFAULT_PORT = 5000
ML_VIEW = "workflowType=machine_learning"
"""The query that opens MLflow's model-training view of an experiment or run (MLflow 3 opens
its GenAI view otherwise)."""
RUNS_LIST = f"{ML_VIEW}&viewStateShareKey={RUNS_VIEW_KEY}"
"""The query of an experiment's run list as rlfleet shows it (the reward as a column)."""


def ui_command(
    workspace: Workspace, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> list[str]:
    """The ``mlflow server`` command that serves the workspace's store (and artifacts). The
    store's URI goes in its environment (:func:`ui_env`), so that no password shows in ``ps``."""
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if workspace.artifact_location:
        command += ["--default-artifact-root", workspace.artifact_location]
    return command


def ui_env(workspace: Workspace) -> dict[str, str]:
    """The environment of the UI's server: this one, with the workspace's store. MLflow's job
    execution (a pool of consumer processes for GenAI jobs, ~2 GB resident) is off unless the
    user turns it on."""
    from rlfleet.tracking.store import driver_uri

    return {
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **os.environ,
        "MLFLOW_BACKEND_STORE_URI": driver_uri(workspace.tracking_uri),
    }


def serve_ui(workspace: Workspace, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> int:
    """Run the UI in the foreground until Ctrl-C or SIGTERM; returns its exit code."""
    from rlfleet.monitor.foreground import run_in_foreground

    return run_in_foreground(ui_command(workspace, host=host, port=port), ui_env(workspace))
