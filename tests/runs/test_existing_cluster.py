"""A ``ray`` compute target: an existing cluster with a Ray token of its own, not the
workspace's. The target keeps the token it was made with (``--token-file``, or the caller's Ray
auth settings); runs use it; a token the cluster refuses is said to be one, at once."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
import yaml
from support import cli_in_process, run_cli, write_spec

from rlfleet.compute.cluster import LocalCluster

pytestmark = pytest.mark.cluster


@pytest.fixture
def existing(warm_workspace) -> tuple[str, str, str]:
    """The GCS address, token file and dashboard address of a running cluster that is not the
    test workspace's (the session's warm cluster, of another workspace with another token)."""
    [cluster] = LocalCluster.prune(warm_workspace)
    return cluster.gcs_address, cluster.token_path, f"127.0.0.1:{cluster.dashboard_port}"


def submit(workspace, tmp_path, target: str, **fields) -> dict:
    spec = write_spec(
        tmp_path / "run.yaml", entry_script="where.py", compute_target=target, **fields
    )
    submitted = run_cli("submit", str(spec), "--json", cwd=workspace.root)
    assert submitted.code == 0, submitted.err
    run_id = json.loads(submitted.out)["id"]
    # (about 20 s on a quiet machine; up to 137 s seen beside the rest of the suite)
    run_cli("runs", "wait", run_id, "--timeout", "400", cwd=workspace.root, timeout=420)
    return json.loads(
        cli_in_process("runs", "show", run_id, "--json", workspace=workspace.root).out
    )


def test_a_run_on_an_existing_cluster_uses_that_cluster_s_token(workspace, tmp_path, existing):
    address, token_file, dashboard = existing
    assert token_file != str(workspace.ray_token_path)
    created = run_cli(
        "compute", "create", "remote", "--kind", "ray", "--address", address,
        "--dashboard-address", dashboard, "--token-file", token_file, cwd=workspace.root,
    )  # fmt: skip
    assert created.code == 0, created.err
    shown = json.loads(run_cli("compute", "show", "remote", "--json", cwd=workspace.root).out)
    assert shown["error"] is None and shown["nodes_up"] == 2, shown
    assert shown["token_file"] == token_file

    run = submit(workspace, tmp_path, "remote")
    assert run["status"] == "COMPLETED", run
    assert run["metrics"]["answer"] == 42
    log = cli_in_process("runs", "logs", run["id"], workspace=workspace.root).out
    port = address.rsplit(":", 1)[1]  # Ray names this machine by its address, not 127.0.0.1
    assert re.search(rf"ran on [0-9.]+:{port}\n", log), log
    token = Path(token_file).read_text().strip()
    assert token not in json.dumps(run) and token not in log


def test_a_refused_token_is_said_to_be_one_at_once(workspace, tmp_path, existing):
    address, _, dashboard = existing
    wrong = tmp_path / "wrong_token"
    wrong.write_text("0" * 64)
    created = run_cli(
        "compute", "create", "remote", "--kind", "ray", "--address", address,
        "--dashboard-address", dashboard, "--token-file", str(wrong), cwd=workspace.root,
    )  # fmt: skip
    assert created.code == 0, created.err
    shown = run_cli("compute", "show", "remote", cwd=workspace.root)
    assert "refused the token in" in shown.out and str(wrong) in shown.out, shown.out

    spec = write_spec(tmp_path / "run.yaml", entry_script="where.py", compute_target="remote")
    refused = run_cli("submit", str(spec), "--json", cwd=workspace.root)
    assert refused.code != 0 and len(refused.err.strip().splitlines()) == 1, refused.err
    assert "refused the token in" in refused.err and "--token-file" in refused.err
    assert (
        workspace.tracking.search_runs([e.experiment_id for e in workspace.tracking.experiments()])
        == []
    )  # nothing recorded


def test_the_caller_s_token_is_kept_by_the_target(workspace, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "a" * 64)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    created = cli_in_process(
        "compute", "create", "lab", "--kind", "ray", "--address", "127.0.0.1:1",
        workspace=workspace.root,
    )  # fmt: skip
    assert created.code == 0, created.err
    record = (workspace.state_dir / "compute" / "lab.yaml").read_text()
    assert "a" * 64 not in record
    kept = yaml.safe_load(record)["token_file"]
    assert Path(kept).read_text() == "a" * 64
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600

    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", kept)  # a file: kept as the file
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    assert cli_in_process(
        "compute", "create", "lab2", "--kind", "ray", "--address", "127.0.0.1:1",
        workspace=workspace.root,
    ).code == 0  # fmt: skip
    assert (
        yaml.safe_load((workspace.state_dir / "compute" / "lab2.yaml").read_text())["token_file"]
        == kept
    )

    assert cli_in_process("compute", "delete", "lab", workspace=workspace.root).code == 0
    assert not os.path.exists(kept)  # the workspace's copy goes with its target


@pytest.mark.parametrize(
    "args, message",
    [
        (["--token-file", "/no/such/token"], "cannot read --token-file /no/such/token"),
        (["--kind", "local", "--token-file", "/etc/hostname"], "--token-file is for targets"),
    ],
)
def test_bad_token_files_are_refused(workspace, args, message):
    base = ["compute", "create", "x"] + (
        ["--kind", "ray", "--address", "h:1"] if "--kind" not in args else []
    )
    result = cli_in_process(*base, *args, workspace=workspace.root)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
    assert not (workspace.state_dir / "compute" / "x.yaml").exists()
