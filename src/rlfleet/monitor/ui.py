"""``rlfleet ui``: MLflow's own UI over the workspace's store, on 127.0.0.1 by default."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rlfleet.workspace import Workspace

DEFAULT_PORT = 5000


def ui_command(
    workspace: Workspace, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> list[str]:
    """The ``mlflow server`` command that serves the workspace's store (and artifacts)."""
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        workspace.tracking_uri,
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


def serve_ui(workspace: Workspace, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> int:
    """Run the UI in the foreground until interrupted; returns its exit code."""
    proc = subprocess.Popen(ui_command(workspace, host=host, port=port))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
