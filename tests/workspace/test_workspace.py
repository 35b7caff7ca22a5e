"""Workspaces: init, discovery from sub-folders, the config file, the Ray token."""

from __future__ import annotations

import stat

import pytest

from rlfleet import Workspace
from rlfleet.errors import WorkspaceConfigError, WorkspaceNotFoundError


def test_init_and_find_from_a_subfolder(tmp_path, monkeypatch):
    ws = Workspace.init(tmp_path / "proj", name="pong")
    deep = tmp_path / "proj" / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    monkeypatch.delenv("RLFLEET_WORKSPACE", raising=False)
    found = Workspace.from_config()
    assert found.root == ws.root
    assert found.name == "pong"
    assert found.tracking_uri == f"sqlite:///{ws.root}/.rlfleet/mlflow.db"
    # init again keeps what is there
    assert Workspace.init(tmp_path / "proj", name="other").name == "pong"


def test_not_found_and_bad_config(tmp_path, monkeypatch):
    monkeypatch.delenv("RLFLEET_WORKSPACE", raising=False)
    with pytest.raises(WorkspaceNotFoundError, match="rlfleet init"):
        Workspace.from_config(tmp_path)
    (tmp_path / "rlfleet.yaml").write_text("- a list\n")
    with pytest.raises(WorkspaceConfigError, match="not a mapping"):
        Workspace.from_config(tmp_path)


def test_tracking_uri_from_config(tmp_path):
    ws = Workspace.init(tmp_path / "db", tracking_uri="postgresql://rl@db/rlfleet")
    assert Workspace.from_config(tmp_path / "db").tracking_uri == "postgresql://rl@db/rlfleet"
    # a database keeps no artifacts: they stay in the workspace, as with the embedded store
    assert ws.artifact_location == (ws.state_dir / "artifacts").as_uri()
    server = Workspace.init(tmp_path / "server", tracking_uri="http://mlflow:5000")
    assert server.artifact_location is None  # the server's own


def test_ray_token_is_private_and_stable(tmp_path):
    ws = Workspace.init(tmp_path)
    path = ws.ray_token_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text()
    assert len(token) == 64
    assert ws.ray_token_path.read_text() == token
