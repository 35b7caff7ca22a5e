"""``rlfleet server``: the workspace's store served to other hosts, with authentication.

A head node on another host cannot open a SQLite file on the client, so a workspace whose runs
go to remote clusters is served over HTTP: this is MLflow's own tracking server with its
basic-auth app (``mlflow server --app-name basic-auth``), serving the store and proxying the
artifacts (``--serve-artifacts``), bound to the interface the user names (127.0.0.1 unless told
otherwise). rlfleet adds the setup: an admin user ``rlfleet`` whose password is made once and
kept in ``.rlfleet/server/password`` (readable by its owner only), the auth database next to it,
MLflow's telemetry off, and the secrets passed in the server's environment, never on its command
line. Every request needs the credentials (MLflow answers 401 without them).

A client workspace on another host points at it with ``rlfleet init --tracking-uri
http://HOST:PORT --tracking-username rlfleet --tracking-password-file FILE``.
"""

from __future__ import annotations

import configparser
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rlfleet.workspace.workspace import write_secret

if TYPE_CHECKING:
    from rlfleet.workspace import Workspace

DEFAULT_PORT = 5000
ADMIN_USER = "rlfleet"


@dataclass(frozen=True)
class ServerFiles:
    """Where the server's own state lives in the workspace (``.rlfleet/server/``)."""

    folder: Path

    @property
    def password(self) -> Path:
        return self.folder / "password"

    @property
    def auth_config(self) -> Path:
        return self.folder / "basic_auth.ini"

    @property
    def auth_db(self) -> Path:
        return self.folder / "auth.db"


def server_files(workspace: Workspace) -> ServerFiles:
    """The server's files, made on first use: the admin password (random, mode 0600) and
    MLflow's auth config (users' database in the same folder, no access without a user)."""
    folder = workspace.state_dir / "server"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = ServerFiles(folder)
    if not files.password.exists():
        write_secret(files.password, secrets.token_urlsafe(24))
    config = configparser.ConfigParser()
    config["mlflow"] = {
        "default_permission": "READ",
        "database_uri": f"sqlite:///{files.auth_db}",
        "admin_username": ADMIN_USER,
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
    }
    with open(files.auth_config, "w") as handle:
        config.write(handle)
    return files


def server_command(
    workspace: Workspace, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> list[str]:
    """The ``mlflow server`` command; the store and the secrets go in :func:`server_env`."""
    command = [
        sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
        "--host", host, "--port", str(port), "--workers", "1", "--serve-artifacts",
    ]  # fmt: skip
    if workspace.artifact_location:
        command += ["--artifacts-destination", workspace.artifact_location]
    return command


def server_env(workspace: Workspace) -> dict[str, str]:
    """The server's environment: the workspace's store, the auth config and the admin password
    (used by MLflow when it creates the admin user, on the first start)."""
    from rlfleet.monitor.ui import ui_env

    files = server_files(workspace)
    return {
        **ui_env(workspace),
        "MLFLOW_AUTH_CONFIG_PATH": str(files.auth_config),
        "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN_USER,
        "MLFLOW_AUTH_ADMIN_PASSWORD": files.password.read_text().strip(),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": _secret_key(files),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def _secret_key(files: ServerFiles) -> str:
    """The Flask secret of the auth app's forms (CSRF), kept with the password."""
    path = files.folder / "secret_key"
    if not path.exists():
        write_secret(path, secrets.token_hex(32))
    return path.read_text().strip()


def serve(workspace: Workspace, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> int:
    """Run the server in the foreground until Ctrl-C or SIGTERM; returns its exit code."""
    from rlfleet.monitor.foreground import run_in_foreground

    return run_in_foreground(server_command(workspace, host=host, port=port), server_env(workspace))
