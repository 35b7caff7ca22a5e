"""A worker node dies mid-training, for real: its raylet is killed while IMPALA learns CartPole.

The run must go on with the other actor, the platform must start the node again, Ray must
restart the lost actor on it, the run must record all of it, and the reward must keep climbing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from support import processes_with, wait_until

from rlfleet import RunStatus
from rlfleet.compute.cluster import LocalCluster, ray_auth_env
from rlfleet.compute.processes import session_processes
from rlfleet.impala.presets import CARTPOLE
from rlfleet.train import submit_training

pytestmark = pytest.mark.cluster

CONFIG = json.dumps({**CARTPOLE, "num_workers": 2})
"""The CartPole preset (150 in about 10 s of learning) on 2 actors: the reward has time to pass
150 in the 45 s run even on a slow machine, with one actor lost for part of it."""


def _metric(run, name):
    return [p.value for p in run.get_metric_history(name)]


def _story(run) -> str:
    """What the run recorded, for a failed assertion: status, health points, node events and
    the driver log's last lines (without the raylet's own, which Ray streams there too)."""
    lines = [
        line
        for line in run.driver_log().splitlines()
        if "(raylet)" not in line and "[state-dump]" not in line
    ]
    return (
        f"{run.status.value}: healthy={_metric(run, 'num_healthy_workers')} "
        f"nodes={run.tags.get('rlfleet.nodes')}\n" + "\n".join(lines[-25:])
    )


def test_a_dead_worker_node_is_replaced_and_learning_goes_on(workspace):
    run = submit_training(
        workspace,
        env="CartPole-v1",
        config=CONFIG,
        stop='{"time_total_s": 45}',
        head="head",
        worker="workers",
        nodes=2,
    )
    assert wait_until(
        lambda: _metric(run, "num_healthy_workers") == [2.0], timeout=180, interval=0.5
    )
    reward_before = _metric(run, "episode_reward_mean")[-1]
    cluster = LocalCluster.load(workspace.clusters_dir / f"{run.tags['rlfleet.cluster']}.json")
    worker = cluster.node("worker-0")
    [raylet] = [p for p in session_processes([worker.pid]) if p.name() == "raylet"]
    raylet.send_signal(signal.SIGKILL)

    assert wait_until(lambda: 1.0 in _metric(run, "num_healthy_workers"), timeout=60), _story(run)
    assert wait_until(lambda: _metric(run, "num_healthy_workers")[-1] == 2.0, timeout=90), (
        "the lost actor never came back: " + _story(run)
    )
    # The dead node stays in Ray's list as DEAD: asking for the alive ones still works (Ray's
    # state API raised on the rows its filter dropped, and a run waiting for nodes waited in vain).
    # (In a process of its own: Ray keeps the token of the first cluster a process talks to.)
    check = (
        "import sys\n"
        "from rlfleet.compute.cluster import alive_nodes\n"
        "from rlfleet.runs.lease import _wait_for_node_count\n"
        "print(len(alive_nodes(sys.argv[1], timeout=10)))\n"
        "_wait_for_node_count(sys.argv[1], 3, 10, lambda: False)\n"
    )
    env = {**os.environ, **ray_auth_env(workspace)}
    alive = subprocess.run(
        [sys.executable, "-c", check, cluster.gcs_address], env=env, capture_output=True, text=True
    )
    assert alive.returncode == 0 and alive.stdout.split() == ["3"], alive.stderr[-2000:]
    assert run.wait_for_completion(timeout_s=120) is RunStatus.COMPLETED, run.to_dict()["error"]

    healthy = _metric(run, "num_healthy_workers")
    assert healthy[0] == 2.0 and 1.0 in healthy and healthy[-1] == 2.0
    assert _metric(run, "num_worker_failures")[-1] >= 1
    rewards = _metric(run, "episode_reward_mean")
    assert rewards[-1] >= 150 and rewards[-1] > reward_before, rewards
    events = run.store.read_artifact(run.id, "events.txt").decode()
    assert "down: worker-0" in events and "restarting worker nodes: worker-0" in events, events
    assert "nodes up: 3/3" in events.splitlines()[-1], events
    log = run.driver_log()
    assert "rollout actor" in log and "lost" in log and "is back" in log
    # (its temp folder is removed in the background: that `rm` may still be going)
    assert wait_until(lambda: processes_with(f"rlfleet/{cluster.cluster_id}") == [], 60), (
        processes_with(f"rlfleet/{cluster.cluster_id}")
    )
