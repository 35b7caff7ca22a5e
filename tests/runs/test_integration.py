"""A run submitted to a real local cluster of one head and two worker nodes, end to end."""

from __future__ import annotations

import json
import re

import pytest
from support import cli_in_process, processes_with, run_cli, write_spec

pytestmark = pytest.mark.cluster


def test_run_on_head_and_two_workers(workspace, tmp_path):
    spec = write_spec(
        tmp_path / "run.yaml",
        entry_script="tasks_on_workers.py",
        script_params={"--tasks": 4, "--config": "'{\"seed_style\": true}'"},
        worker_configuration={"compute_target": "workers", "node_count": 2},
        cluster_coordination_timeout_seconds=120,
    )
    submitted = run_cli(
        "submit", str(spec), "--experiment", "integration", "--json", cwd=workspace.root
    )
    assert submitted.code == 0, submitted.err
    run_id = json.loads(submitted.out)["id"]

    waited = run_cli("runs", "wait", run_id, "--timeout", "240", cwd=workspace.root)
    shown = json.loads(
        cli_in_process("runs", "show", run_id, "--json", workspace=workspace.root).out
    )
    assert waited.code == 0, (waited.out, waited.err, shown)
    assert shown["status"] == "COMPLETED"
    assert shown["experiment"] == "integration"

    # Metrics, with their steps.
    assert shown["metrics"]["tasks_on_worker_nodes"] == 4
    assert shown["metrics"]["episodes_total"] == 42
    points = json.loads(
        cli_in_process(
            "runs", "metrics", run_id, "episode_reward_mean", "--json", workspace=workspace.root
        ).out
    )["points"]
    assert [(p["step"], p["value"]) for p in points] == [
        (0, -21.0),
        (10, -18.0),
        (20, -15.0),
        (30, -12.0),
        (40, -9.0),
    ]
    task_points = json.loads(
        cli_in_process(
            "runs", "metrics", run_id, "task_index", "--json", workspace=workspace.root
        ).out
    )["points"]
    assert sorted((p["step"], p["value"]) for p in task_points) == [(i, float(i)) for i in range(4)]

    # One child per role, each with logs.
    children = {c["role"]: c for c in shown["children"]}
    assert set(children) == {"head", "worker"}
    assert children["head"]["status"] == children["worker"]["status"] == "COMPLETED"
    assert children["head"]["logs"] == ["driver_log.txt"]
    assert sorted(children["worker"]["logs"]) == ["worker-0_log.txt", "worker-1_log.txt"]
    driver_log = cli_in_process("runs", "logs", run_id, workspace=workspace.root).out
    assert "done" in driver_log

    # The tasks ran on the worker nodes: each task's output is in the log that rlfleet fetched
    # from the node it says it ran on, and both worker nodes got some.
    worker_logs = cli_in_process(
        "runs", "logs", run_id, "--role", "worker", workspace=workspace.root
    ).out
    sections = dict(
        re.findall(r"===== (worker-\d)_log\.txt =====\n(.*?)(?======|\Z)", worker_logs, re.S)
    )
    ran_on = dict(re.findall(r"result: task (\d) on (worker-\d) \(worker\)", driver_log))
    assert len(ran_on) == 4
    assert set(ran_on.values()) == {"worker-0", "worker-1"}
    for task, node in ran_on.items():
        assert f"task {task} ran on {node} (role worker)" in sections[node]

    # The cluster the run started is gone.
    assert processes_with(f"rlfleet/{shown['compute']['cluster']}") == []
