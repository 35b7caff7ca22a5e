"""Local clusters (rlfleet.compute.cluster) on a machine too busy for Ray's start-up limit."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from rlfleet.compute.cluster import RAY_STARTUP_TIMEOUT, LocalCluster, use_workspace_token

pytestmark = pytest.mark.cluster


def stop_raylet_at_start(start_pid: int, stopped: list[int], until: float) -> None:
    """SIGSTOP the raylet that ``ray start`` (pid ``start_pid``) spawns, as soon as it exists:
    the node cannot register with the GCS, as on a machine too busy to run it."""
    while time.monotonic() < until:
        try:
            children = psutil.Process(start_pid).children()
        except psutil.NoSuchProcess:
            return
        for child in children:
            try:
                if child.name() == "raylet":
                    os.kill(child.pid, signal.SIGSTOP)
                    stopped.append(child.pid)
                    return
            except (psutil.Error, ProcessLookupError):
                continue
        time.sleep(0.005)


def test_a_node_that_ray_gives_up_on_while_starting_is_started_again(workspace):
    """A worker node whose raylet does not register within Ray's hard-coded 30 s (``ray start``
    then exits: "timed out during startup") is started again, and the cluster comes up."""
    use_workspace_token(workspace)
    cluster = LocalCluster.start(workspace, workspace.compute.get("head"), owner="test")
    try:
        cluster.wait_for_nodes(["head"], timeout_s=120)
        [first] = cluster.add_workers(workspace.compute.get("workers"), 1, owner="test")
        stopped: list[int] = []
        catcher = threading.Thread(
            target=stop_raylet_at_start, args=(first.pid, stopped, time.monotonic() + 20)
        )
        catcher.start()
        catcher.join()
        assert stopped, "the first raylet was not caught"
        cluster.wait_for_nodes(["worker-0"], timeout_s=150)
        [second] = [n for n in cluster.nodes if n.name == "worker-0"]
        assert second.pid != first.pid and second.temp_dir != first.temp_dir
        assert RAY_STARTUP_TIMEOUT in Path(first.log_path).read_text()
        assert not psutil.pid_exists(stopped[0]) or psutil.Process(stopped[0]).status() in {
            psutil.STATUS_ZOMBIE
        }, "the stopped raylet was left"
        record = LocalCluster.load(Path(cluster.record_path))
        assert [n.pid for n in record.nodes if n.name == "worker-0"] == [second.pid]
    finally:
        cluster.stop()
