"""Runs whose supervisor died: ended FAILED when next looked at, their nodes stopped.

The supervisor is the only writer of a run's status; if it is killed (or the machine's process
table says it is gone) nothing else would end the run, so every read of a run's status on the
supervisor's machine checks it. The nodes that run started are then stopped too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rlfleet.compute.target import ComputeKind
from rlfleet.runs import record
from rlfleet.runs.status import RunStatus

if TYPE_CHECKING:
    from mlflow.entities import Run as MlflowRun

    from rlfleet.tracking.store import TrackingStore
    from rlfleet.workspace import Workspace

logger = logging.getLogger(__name__)


def reconcile(
    store: TrackingStore, run: MlflowRun, workspace: Workspace | None = None
) -> RunStatus:
    """The run's status, after ending it FAILED if it was orphaned."""
    if record.SUPERVISOR_JOB in run.data.tags and workspace is not None:
        return _reconcile_remote(store, run, workspace)
    if not record.orphaned(run):
        return record.status_of(run)
    run_id = run.info.run_id
    pid = run.data.tags[record.SUPERVISOR_PID]
    reason = (
        f"its supervisor (pid {pid}) exited without ending the run; "
        f"see .rlfleet/runs/{run_id}/supervisor.log"
    )
    if workspace is not None:
        release_nodes(workspace, run_id)
    for child in store.children(run):
        record.set_status(store, child.info.run_id, RunStatus.FAILED)
    record.set_status(store, run_id, RunStatus.FAILED, reason=reason, error=reason)
    return record.status_of(store.get_run(run_id))


REMOTE_CHECK_S = 10.0
"""How often (at most) a process asks a cluster whether a run's supervisor job still runs."""
_remote_checked: dict[str, float] = {}


def _reconcile_remote(store: TrackingStore, run: MlflowRun, workspace: Workspace) -> RunStatus:
    """A run supervised on its cluster (runs/remote.py) whose supervisor job ended without
    ending the run (it could not start there, or was stopped): FAILED, with the job's message.
    An unreachable cluster changes nothing here."""
    import time

    status = record.status_of(run)
    run_id = run.info.run_id
    now = time.monotonic()
    if status.is_terminal() or now - _remote_checked.get(run_id, -REMOTE_CHECK_S) < REMOTE_CHECK_S:
        return status
    _remote_checked[run_id] = now
    from rlfleet.compute.jobs import jobs_client
    from rlfleet.errors import RlfleetError

    try:
        target = workspace.compute.get(run.data.tags[record.HEAD_TARGET])
        if target.kind is ComputeKind.SSH:
            from rlfleet.compute.launcher import as_ray_target

            target = as_ray_target(workspace, target)
        client = jobs_client(workspace, target)
        info = client.get_job_info(run.data.tags[record.SUPERVISOR_JOB])
    except (RlfleetError, KeyError):
        return status
    except Exception as err:  # the cluster is unreachable now: nothing to conclude
        logger.debug("could not ask the cluster about run %s: %s", run_id, err)
        return status
    if not info.status.is_terminal():
        return status
    fresh = store.get_run(run_id)  # it may have ended the run just before it ended itself
    if record.status_of(fresh).is_terminal():
        return record.status_of(fresh)
    message = (info.message or "").strip().splitlines()
    reason = (
        f"its supervisor (Ray job {run.data.tags[record.SUPERVISOR_JOB]} on the cluster) ended "
        f"{info.status.value} without ending the run" + (f": {message[-1]}" if message else "")
    )
    for child in store.children(fresh):
        record.set_status(store, child.info.run_id, RunStatus.FAILED)
    record.set_status(store, run_id, RunStatus.FAILED, reason=reason, error=reason)
    return record.status_of(store.get_run(run_id))


def release_nodes(workspace: Workspace, run_id: str) -> None:
    """Stop every local node (or whole cluster) that the run started."""
    from rlfleet.compute.cluster import LocalCluster

    owner = f"run:{run_id}"
    for cluster in LocalCluster.all(workspace):
        if cluster.owner == owner:
            logger.warning("stopping cluster %s of orphaned run %s", cluster.cluster_id, run_id)
            cluster.stop()
            continue
        nodes = [n for n in cluster.nodes if n.owner == owner]
        if nodes:
            cluster.stop_nodes(nodes)
