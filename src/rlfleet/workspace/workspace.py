"""The workspace: where runs are tracked and compute targets are defined.

A workspace is a folder holding ``rlfleet.yaml``. Its state lives in ``.rlfleet/`` next to it:
the embedded MLflow store (``mlflow.db``, ``artifacts/``), compute targets (``compute/``), the
local state of runs (``runs/``) and of warm clusters (``clusters/``), and the Ray token that
authenticates the clusters rlfleet starts (``ray_auth_token``, readable by its owner only).
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from rlfleet.errors import WorkspaceConfigError, WorkspaceNotFoundError
from rlfleet.workspace.config import CONFIG_FILE_NAME, WorkspaceConfig

if TYPE_CHECKING:
    from rlfleet.compute.store import ComputeStore
    from rlfleet.compute.target import ComputeTarget
    from rlfleet.tracking.store import TrackingStore

STATE_DIR_NAME = ".rlfleet"
WORKSPACE_ENV_VAR = "RLFLEET_WORKSPACE"
# Tracking URIs of MLflow servers, which keep artifacts themselves (databases do not).
SERVER_SCHEMES = ("http://", "https://", "databricks")


class Workspace:
    """A workspace folder. Use :meth:`from_config` to find one, :meth:`init` to make one."""

    def __init__(self, root: Path, config: WorkspaceConfig) -> None:
        self.root = root.resolve()
        self.config = config

    def __repr__(self) -> str:
        return f"Workspace(name={self.name!r}, root='{self.root}')"

    # -- finding and creating -----------------------------------------------------------------

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        """Find the workspace that holds ``path`` (default: ``$RLFLEET_WORKSPACE`` or the cwd).

        Looks for ``rlfleet.yaml`` in ``path`` and then in each parent folder, as the seed's
        ``Workspace.from_config()`` looks for ``config.json``.

        Raises:
            WorkspaceNotFoundError: no folder on the way up holds a workspace.
        """
        start = Path(path or os.environ.get(WORKSPACE_ENV_VAR) or Path.cwd()).resolve()
        if start.is_file():
            return cls(start.parent, WorkspaceConfig.load(start))
        for folder in (start, *start.parents):
            candidate = folder / CONFIG_FILE_NAME
            if candidate.is_file():
                return cls(folder, WorkspaceConfig.load(candidate))
        raise WorkspaceNotFoundError(
            f"no {CONFIG_FILE_NAME} in {start} or any parent folder; "
            "run `rlfleet init` to make this folder a workspace."
        )

    @classmethod
    def init(
        cls,
        directory: str | os.PathLike[str] = ".",
        *,
        name: str | None = None,
        tracking_uri: str | None = None,
        tracking_username: str | None = None,
        tracking_password: str | None = None,
    ) -> Workspace:
        """Make ``directory`` a workspace; an existing workspace there is returned unchanged.
        ``tracking_username`` and ``tracking_password``: the credentials of an MLflow server at
        ``tracking_uri`` (the password is kept in ``.rlfleet/``, not in ``rlfleet.yaml``)."""
        root = Path(directory).resolve()
        config_path = root / CONFIG_FILE_NAME
        if config_path.exists():
            return cls(root, WorkspaceConfig.load(config_path))
        if root.exists() and not root.is_dir():
            raise WorkspaceConfigError(f"{root} is a file, not a folder; pick a folder.")
        root.mkdir(parents=True, exist_ok=True)
        if (tracking_username or tracking_password) and not (
            tracking_uri and tracking_uri.startswith(SERVER_SCHEMES)
        ):
            raise WorkspaceConfigError(
                "tracking credentials are for an MLflow server: give --tracking-uri "
                "http://HOST:PORT with them."
            )
        config = WorkspaceConfig(
            name=name or root.name or "workspace",
            tracking_uri=tracking_uri,
            tracking_username=tracking_username,
        )
        workspace = cls(root, config)
        workspace.state_dir.mkdir(exist_ok=True)
        (workspace.state_dir / ".gitignore").write_text("*\n")
        if tracking_password is not None:
            write_secret(workspace.tracking_password_path, tracking_password)
        config.save(config_path)
        return workspace

    # -- layout ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE_NAME

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR_NAME

    def _state_subdir(self, name: str) -> Path:
        path = self.state_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def runs_dir(self) -> Path:
        return self._state_subdir("runs")

    @property
    def clusters_dir(self) -> Path:
        return self._state_subdir("clusters")

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI: the configured one, else the embedded SQLite store."""
        if self.config.tracking_uri:
            return self.config.tracking_uri
        return f"sqlite:///{self.state_dir / 'mlflow.db'}"

    @property
    def artifact_location(self) -> str | None:
        """Root for new experiments' artifacts: ``.rlfleet/artifacts`` for a database store
        (SQLite, PostgreSQL, ...); ``None`` leaves it to a tracking server (``http(s)://``)."""
        if self.config.artifact_location:
            return self.config.artifact_location
        if self.config.tracking_uri and self.config.tracking_uri.startswith(SERVER_SCHEMES):
            return None
        return (self.state_dir / "artifacts").as_uri()

    @property
    def ray_token_path(self) -> Path:
        """The token that authenticates the Ray clusters this workspace starts (made once)."""
        path = self.state_dir / "ray_auth_token"
        if not path.exists():
            write_secret(path, secrets.token_hex(32))
        return path

    @property
    def tracking_password_path(self) -> Path:
        """The password of the MLflow server the workspace tracks to (if it needs one)."""
        return self.state_dir / "tracking_password"

    def tracking_credentials(self) -> tuple[str, str] | None:
        """``(user, password)`` for the tracking server: the workspace's, else MLflow's own
        variables (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``); ``None`` if there are none or
        the store is not a server."""
        if not self.tracking_uri.startswith(SERVER_SCHEMES):
            return None
        user = self.config.tracking_username or os.environ.get("MLFLOW_TRACKING_USERNAME")
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
        if self.config.tracking_username and self.tracking_password_path.is_file():
            password = self.tracking_password_path.read_text().strip()
        if not user or password is None:
            return None
        return user, password

    # -- parts ----------------------------------------------------------------------------------

    @cached_property
    def tracking(self) -> TrackingStore:
        """The MLflow tracking store of this workspace. For a server that asks for credentials
        they are set in this process's environment, where MLflow's client reads them (and the
        processes rlfleet starts inherit them: never on a command line)."""
        from rlfleet.tracking.store import TrackingStore, use_credentials

        credentials = self.tracking_credentials()
        if credentials is not None:
            use_credentials(credentials)
        return TrackingStore(self.tracking_uri, artifact_location=self.artifact_location)

    @cached_property
    def compute(self) -> ComputeStore:
        """The compute targets defined in this workspace."""
        from rlfleet.compute.store import ComputeStore

        return ComputeStore(self._state_subdir("compute"))

    @property
    def compute_targets(self) -> dict[str, ComputeTarget]:
        """Compute targets by name, as the seed's ``ws.compute_targets``."""
        return {target.name: target for target in self.compute.list()}


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to a new file ``path`` readable by its owner only (replacing any)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
