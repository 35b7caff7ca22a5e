"""Workspaces: a folder with an ``rlfleet.yaml`` file, its tracking store and its compute."""

from rlfleet.workspace.config import CONFIG_FILE_NAME, WorkspaceConfig
from rlfleet.workspace.workspace import Workspace

__all__ = ["CONFIG_FILE_NAME", "Workspace", "WorkspaceConfig"]
