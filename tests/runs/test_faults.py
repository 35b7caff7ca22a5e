"""Faults injected for real: a head node killed, a supervisor killed. No run stays RUNNING."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil
import pytest
from support import processes_with, run_cli, wait_until, write_spec

from rlfleet import RunStatus
from rlfleet.compute.cluster import LocalCluster
from rlfleet.compute.processes import session_processes
from rlfleet.runs.spec import RunSpec
from rlfleet.runs.submit import submit

pytestmark = pytest.mark.cluster


def _running(workspace, tmp_path):
    spec = write_spec(tmp_path / "sleep.yaml", entry_script="sleeps.py")
    run = submit(workspace, RunSpec.from_yaml(spec))
    assert wait_until(lambda: "started" in run.store.get_run(run.id).data.metrics, timeout=120)
    cluster_id = run.tags["rlfleet.cluster"]
    return run, LocalCluster.load(workspace.clusters_dir / f"{cluster_id}.json")


def test_a_killed_head_node_fails_the_run_quickly(workspace, tmp_path):
    run, cluster = _running(workspace, tmp_path)
    head = cluster.node("head")
    killed = time.monotonic()
    for proc in session_processes([head.pid]):
        with contextlib.suppress(psutil.NoSuchProcess):  # it may end between the list and the kill
            proc.send_signal(signal.SIGKILL)
    assert run.wait_for_completion(timeout_s=30) is RunStatus.FAILED
    took = time.monotonic() - killed
    reason = run.to_dict()["status_reason"]
    assert "head node died" in reason or "lost the cluster" in reason, reason
    assert took < 20, f"took {took:.1f} s"
    assert processes_with(f"rlfleet/{cluster.cluster_id}") == []


def test_a_killed_supervisor_does_not_leave_the_run_running(workspace, tmp_path):
    run, cluster = _running(workspace, tmp_path)
    os.kill(int(run.tags["rlfleet.supervisor.pid"]), signal.SIGKILL)
    assert wait_until(lambda: processes_with(f"--run-id {run.id}") == [], timeout=10)
    shown = run_cli("runs", "show", run.id, cwd=workspace.root)
    assert "FAILED" in shown.out and "supervisor" in shown.out
    assert run.status is RunStatus.FAILED
    assert {c.status for c in run.get_children()} == {RunStatus.FAILED}
    # the nodes the run started are stopped too
    assert wait_until(lambda: processes_with(f"rlfleet/{cluster.cluster_id}") == [], timeout=15)
