"""``ssh`` targets: the cluster config rlfleet gives Ray's launcher, and the checks before it.
(Ray started on hosts over SSH for real: tests/multihost/test_ssh_target.py.)"""

from __future__ import annotations

import pytest
import yaml
from support import cli_in_process

from rlfleet.compute.launcher import (
    NODE_HEALTH_CHECKS,
    as_ray_target,
    cluster_config,
    stop_workers_command,
)
from rlfleet.compute.target import ComputeKind, ComputeTarget
from rlfleet.errors import ComputeTargetError


def lab(**fields) -> ComputeTarget:
    base = dict(
        name="lab", kind="ssh", head_host="10.0.0.1", hosts=("10.0.0.2", "10.0.0.3"),
        ssh_user="ray", ssh_key="/keys/id", cpus=2, min_nodes=0, max_nodes=2,
    )  # fmt: skip
    return ComputeTarget(**{**base, **fields})


def test_the_launcher_config_follows_the_target_and_carries_no_secret(workspace):
    token = workspace.ray_token_path.read_text()
    config = cluster_config(workspace, lab(idle_timeout_minutes=2.5))
    assert config["provider"] == {
        "type": "local", "head_ip": "10.0.0.1", "worker_ips": ["10.0.0.2", "10.0.0.3"],
    }  # fmt: skip
    assert config["auth"] == {"ssh_user": "ray", "ssh_private_key": "/keys/id"}
    assert (config["min_workers"], config["max_workers"]) == (0, 2)
    assert config["idle_timeout_minutes"] == 2.5
    text = yaml.safe_dump(config)
    assert token not in text  # the token goes as a file, by the launcher's file mounts
    assert list(config["file_mounts"].values()) == [str(workspace.ray_token_path)]
    [head_start] = [c for c in config["head_start_ray_commands"] if "--head" in c]
    assert "RAY_enable_autoscaler_v2=0" in head_start and "RAY_AUTH_MODE=token" in head_start
    # a worker host cut off for 30 s keeps its node (tests/multihost/test_ssh_training.py)
    assert f"RAY_health_check_failure_threshold={NODE_HEALTH_CHECKS}" in head_start
    assert "--dashboard-host=10.0.0.1" in head_start and "--node-ip-address=10.0.0.1" in head_start
    assert "--num-cpus=2" in head_start and "rlfleet/role=head" in head_start
    [worker_start] = [c for c in config["worker_start_ray_commands"] if "start" in c]
    assert "rlfleet/role=worker" in worker_start and "RAY_AUTH_MODE=token" in worker_start


def test_the_cluster_is_then_an_existing_one_with_the_workspace_token(workspace):
    view = as_ray_target(workspace, lab())
    assert view.kind is ComputeKind.RAY and view.address == "10.0.0.1:6379"
    assert view.dashboard_url == "http://10.0.0.1:8265"
    assert view.token_file == str(workspace.ray_token_path)


def test_stopping_reaches_every_worker_host():
    command = stop_workers_command(lab(), "~/key.pem")
    for host in ("10.0.0.2", "10.0.0.3"):
        assert f"ray@{host}" in command
    assert command.count("ray stop --force") == 2


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"head_host": None}, "needs --head-host"),
        ({"ssh_key": None, "ssh_user": None}, "needs --ssh-user, --ssh-key"),
        ({"max_nodes": 3}, "one worker node per host"),
        ({"address": "h:1"}, "are for targets of kind 'ray'"),
        ({"idle_timeout_minutes": 0}, "--idle-timeout"),
    ],
)
def test_bad_ssh_targets_are_refused(fields, message):
    with pytest.raises(ComputeTargetError, match=message):
        lab(**fields)


def test_ssh_fields_are_for_ssh_targets_only():
    with pytest.raises(ComputeTargetError, match="are for targets of kind 'ssh'"):
        ComputeTarget("x", head_host="10.0.0.1")


def test_compute_create_ssh_defaults_max_nodes_to_the_hosts(workspace, tmp_path):
    key = tmp_path / "id"
    key.write_text("not really a key")
    made = cli_in_process(
        "compute", "create", "lab", "--kind", "ssh", "--head-host", "a", "--hosts", "b,c,d",
        "--ssh-user", "ray", "--ssh-key", str(key), workspace=workspace.root,
    )  # fmt: skip
    assert made.code == 0, made.err
    target = workspace.compute.get("lab")
    assert target.hosts == ("b", "c", "d") and target.max_nodes == 3
    missing = cli_in_process(
        "compute", "create", "lab2", "--kind", "ssh", "--head-host", "a", "--hosts", "b",
        "--ssh-user", "ray", "--ssh-key", str(tmp_path / "nope"), workspace=workspace.root,
    )  # fmt: skip
    assert missing.code == 2 and "is not a file" in missing.err


def test_a_run_on_other_hosts_needs_a_store_they_can_reach(workspace, tmp_path):
    """The embedded SQLite store is a file here: a run on hosts elsewhere is refused in one
    line, naming the way out (``rlfleet server``), before anything is recorded or started."""
    from support import write_spec

    key = tmp_path / "id"
    key.write_text("not really a key")
    workspace.compute.create(lab(head_host="198.51.100.10", hosts=("198.51.100.11",), max_nodes=1,
                                 ssh_key=str(key)))  # fmt: skip
    spec = write_spec(tmp_path / "run.yaml", entry_script="where.py", compute_target="lab")
    refused = cli_in_process("submit", str(spec), workspace=workspace.root)
    assert refused.code == 2 and len(refused.err.strip().splitlines()) == 1, refused.err
    assert "cannot open this workspace's SQLite store" in refused.err
    assert "rlfleet server" in refused.err
    assert (
        workspace.tracking.search_runs([e.experiment_id for e in workspace.tracking.experiments()])
        == []
    )
