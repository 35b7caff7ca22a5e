"""The run lifecycle: forward only, never out of a terminal status."""

from __future__ import annotations

import itertools

import pytest

from rlfleet import RunStatus
from rlfleet.runs import record
from rlfleet.runs.reconcile import reconcile

ORDER = [RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING]
TERMINAL = [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED]


@pytest.mark.parametrize(("old", "new"), list(itertools.product(RunStatus, RunStatus)))
def test_transitions(old, new):
    allowed = not old.is_terminal() and (
        new in TERMINAL or (new in ORDER and ORDER.index(new) > ORDER.index(old))
    )
    assert old.can_become(new) is allowed


def test_terminal_statuses_and_mlflow_names():
    assert {s for s in RunStatus if s.is_terminal()} == set(TERMINAL)
    assert RunStatus.CANCELED.mlflow_status == "KILLED"
    assert RunStatus.COMPLETED.mlflow_status == "FINISHED"


def test_set_status_in_a_real_store(workspace):
    store = workspace.tracking
    experiment = store.experiment("lifecycle").experiment_id
    run_id = store.create_run(experiment, tags={record.STATUS: "QUEUED"})
    assert record.set_status(store, run_id, RunStatus.RUNNING)
    assert store.get_run(run_id).info.status == "RUNNING"
    assert not record.set_status(store, run_id, RunStatus.STARTING)  # no going back
    assert record.set_status(store, run_id, RunStatus.FAILED, reason="why", error="trace")
    for later in RunStatus:
        assert not record.set_status(store, run_id, later)
    run = store.get_run(run_id)
    assert record.status_of(run) is RunStatus.FAILED
    assert run.info.status == "FAILED"
    assert run.data.tags[record.STATUS_REASON] == "why"
    assert run.info.end_time is not None


def test_a_run_whose_supervisor_died_does_not_stay_running(workspace):
    import socket
    import subprocess
    import sys

    store = workspace.tracking
    experiment = store.experiment("orphans").experiment_id
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run_id = store.create_run(
        experiment,
        tags={
            record.STATUS: "RUNNING",
            record.SUPERVISOR_PID: str(proc.pid),
            record.SUPERVISOR_HOST: socket.gethostname(),
        },
    )
    assert reconcile(store, store.get_run(run_id), workspace) is RunStatus.FAILED
    assert "exited without ending the run" in store.get_run(run_id).data.tags[record.STATUS_REASON]


def test_a_remote_run_is_failed_only_when_its_head_is_gone_and_its_supervisor_silent(
    workspace, monkeypatch
):
    """A run supervised on its cluster (runs/remote.py) whose head does not answer (here: a
    port nothing listens on): RUNNING while its supervisor's heartbeat is fresh (the client's
    own network may be what fails), FAILED with the reason once it is older than HEAD_LOST_S."""
    import socket
    import time

    from rlfleet import ComputeTarget
    from rlfleet.compute.target import ComputeKind
    from rlfleet.runs import reconcile as module

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # free again once closed: nothing answers there
    workspace.compute.create(
        ComputeTarget(
            "gone", kind=ComputeKind.RAY, address=f"127.0.0.1:{port}",
            dashboard_address=f"127.0.0.1:{port}",
        )
    )  # fmt: skip
    store = workspace.tracking
    experiment = store.experiment("remote").experiment_id
    tags = {record.STATUS: "RUNNING", record.SUPERVISOR_JOB: "rlfleet-supervisor-x",
            record.HEAD_TARGET: "gone"}  # fmt: skip
    run_id = store.create_run(experiment, tags=tags)
    child = store.create_run(experiment, tags={record.STATUS: "RUNNING"}, parent_id=run_id)
    monkeypatch.setattr(module, "REMOTE_CHECK_S", 0.0)
    store.set_tags(run_id, {record.SUPERVISOR_HEARTBEAT: f"{time.time() - 5:.0f}"})
    assert reconcile(store, store.get_run(run_id), workspace) is RunStatus.RUNNING

    store.set_tags(
        run_id, {record.SUPERVISOR_HEARTBEAT: f"{time.time() - module.HEAD_LOST_S - 5:.0f}"}
    )
    assert reconcile(store, store.get_run(run_id), workspace) is RunStatus.FAILED
    reason = store.get_run(run_id).data.tags[record.STATUS_REASON]
    assert reason.startswith(f"lost its cluster: the head (http://127.0.0.1:{port})"), reason
    assert record.status_of(store.get_run(child)) is RunStatus.FAILED
