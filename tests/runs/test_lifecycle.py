"""How runs end: failure, cancel, time limit, a cluster that does not come up."""

from __future__ import annotations

import json
import time

import pytest
from support import processes_with, run_cli, wait_until, write_spec

from rlfleet import Run, RunStatus
from rlfleet.runs.spec import RunSpec
from rlfleet.runs.submit import submit

pytestmark = pytest.mark.cluster


def _show(ws, run_id: str) -> dict:
    result = run_cli("runs", "show", run_id, "--json", cwd=ws.root)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_failing_entry_script_ends_failed_with_its_error(warm_workspace, tmp_path):
    spec = write_spec(tmp_path / "fail.yaml", entry_script="fails.py")
    run = submit(warm_workspace, RunSpec.from_yaml(spec))
    assert run.wait_for_completion(timeout_s=120) is RunStatus.FAILED

    shown = _show(warm_workspace, run.id)
    assert shown["status"] == "FAILED"
    assert "exit code 1" in shown["status_reason"]
    assert "ValueError: boom: the reward exploded" in shown["error"]
    assert shown["metrics"]["before_failure"] == 1.0
    assert {c["role"]: c["status"] for c in shown["children"]} == {"head": "FAILED"}
    waited = run_cli("runs", "wait", run.id, cwd=warm_workspace.root)
    assert waited.code == 1


CANCEL_BOUND_S = 45
"""A cancel's bound here: long enough for a machine busy with the rest of the suite (21 s seen
in two test processes), short of the entry script's own 600 s. On a quiet machine it takes
under 10 s: ``benchmarks/submit_latency.py`` measures it."""


def test_cancel_stops_the_run_and_its_cluster_promptly(workspace, tmp_path):
    spec = write_spec(tmp_path / "sleep.yaml", entry_script="sleeps.py")
    run = submit(workspace, RunSpec.from_yaml(spec))
    assert wait_until(lambda: "started" in run.store.get_run(run.id).data.metrics, timeout=120)
    assert run.status is RunStatus.RUNNING
    cluster = run.tags["rlfleet.cluster"]
    assert processes_with(f"rlfleet/{cluster}")

    # Logs are uploaded while the run goes on, not only at its end.
    def head_log() -> str:
        head = run.get_child("head")
        return head.get_logs().get("driver_log.txt", "") if head else ""

    assert wait_until(lambda: "sleeping" in head_log(), timeout=30)

    started = time.monotonic()
    canceled = run_cli("runs", "cancel", run.id, cwd=workspace.root)
    took = time.monotonic() - started
    assert canceled.code == 0, canceled.err
    assert f"run {run.id}: CANCELED" in canceled.out
    assert took < CANCEL_BOUND_S, f"cancel took {took:.1f} s"
    assert run.status is RunStatus.CANCELED
    assert _show(workspace, run.id)["status_reason"] == "canceled by user"
    assert processes_with(f"rlfleet/{cluster}") == []
    assert processes_with(f"--run-id {run.id}") == []  # the supervisor is gone too

    # A terminal status is never left.
    again = run_cli("runs", "cancel", run.id, cwd=workspace.root)
    assert "already ended: CANCELED" in again.out
    assert run.status is RunStatus.CANCELED


def test_exceeding_max_run_duration_cancels_with_that_reason(warm_workspace, tmp_path):
    spec = write_spec(tmp_path / "slow.yaml", entry_script="sleeps.py", max_run_duration_seconds=3)
    run = submit(warm_workspace, RunSpec.from_yaml(spec))
    assert run.wait_for_completion(timeout_s=120) is RunStatus.CANCELED
    shown = _show(warm_workspace, run.id)
    assert shown["status_reason"] == "max_run_duration_seconds (3 s) exceeded"
    assert shown["metrics"]["started"] == 1.0


def test_cluster_that_cannot_come_up_in_time_fails_clearly(workspace, tmp_path):
    spec = write_spec(
        tmp_path / "never.yaml",
        entry_script="sleeps.py",
        worker_configuration={"compute_target": "workers", "node_count": 2},
        cluster_coordination_timeout_seconds=0.5,
    )
    run = submit(workspace, RunSpec.from_yaml(spec))
    assert run.wait_for_completion(timeout_s=60) is RunStatus.FAILED
    reason = _show(workspace, run.id)["status_reason"]
    assert "did not come up within 0.5 s" in reason
    assert "cluster_coordination_timeout_seconds" in reason
    assert "worker-0 (target 'workers')" in reason
    cluster = Run(run.id, workspace=workspace).tags["rlfleet.cluster"]
    assert processes_with(f"rlfleet/{cluster}") == []
