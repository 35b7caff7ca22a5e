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
    ) -> Workspace:
        """Make ``directory`` a workspace; an existing workspace there is returned unchanged."""
        root = Path(directory).resolve()
        config_path = root / CONFIG_FILE_NAME
        if config_path.exists():
            return cls(root, WorkspaceConfig.load(config_path))
        if root.exists() and not root.is_dir():
            raise WorkspaceConfigError(f"{root} is a file, not a folder; pick a folder.")
        root.mkdir(parents=True, exist_ok=True)
        config = WorkspaceConfig(name=name or root.name or "workspace", tracking_uri=tracking_uri)
        workspace = cls(root, config)
        workspace.state_dir.mkdir(exist_ok=True)
        (workspace.state_dir / ".gitignore").write_text("*\n")
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
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return path

    # -- parts ----------------------------------------------------------------------------------

    @cached_property
    def tracking(self) -> TrackingStore:
        """The MLflow tracking store of this workspace."""
        from rlfleet.tracking.store import TrackingStore

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
