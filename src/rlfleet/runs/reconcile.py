"""Runs whose supervisor died: ended FAILED when next looked at, their nodes stopped.

The supervisor is the only writer of a run's status; if it is killed (or the machine's process
table says it is gone) nothing else would end the run, so every read of a run's status on the
supervisor's machine checks it. The nodes that run started are then stopped too.
"""

from __future__ import annotations

import logging
import time
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
    return _fail(store, run_id, reason)


REMOTE_CHECK_S = 10.0
"""How often (at most) a process asks a cluster whether a run's supervisor job still runs."""
HEAD_LOST_S = 45.0
"""A run supervised on its cluster is FAILED when its head does not answer and the supervisor
has written nothing to the run (its heartbeat, every 10 s) for this long. With the checks'
own intervals, a client that follows the run (``runs wait``) sees it FAILED within
:data:`HEAD_LOST_BOUND_S` of the head's loss; any client on its first look after that."""
HEAD_LOST_BOUND_S = 90
HEAD_PROBE_TIMEOUT_S = 5.0
_remote_checked: dict[str, float] = {}


def _reconcile_remote(store: TrackingStore, run: MlflowRun, workspace: Workspace) -> RunStatus:
    """A run supervised on its cluster (runs/remote.py) whose supervisor job ended without
    ending the run (it could not start there, or was stopped): FAILED, with the job's message.
    A cluster out of reach: FAILED only once its supervisor too has been silent for
    :data:`HEAD_LOST_S` (the head lost for good, not a client's own network trouble)."""
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
    except (RlfleetError, KeyError):
        return status
    if not _answers(target.dashboard_url):
        return _fail_if_silent(store, run, target.dashboard_url)
    try:
        info = jobs_client(workspace, target).get_job_info(run.data.tags[record.SUPERVISOR_JOB])
    except RlfleetError:
        return status
    except Exception as err:  # the cluster is unreachable now: nothing to conclude yet
        logger.debug("could not ask the cluster about run %s: %s", run_id, err)
        return status
    if not info.status.is_terminal():
        return status
    message = (info.message or "").strip().splitlines()
    return _fail(
        store,
        run_id,
        f"its supervisor (Ray job {run.data.tags[record.SUPERVISOR_JOB]} on the cluster) ended "
        f"{info.status.value} without ending the run" + (f": {message[-1]}" if message else ""),
    )


def _answers(url: str | None) -> bool:
    """Whether something accepts a connection at ``url``'s host and port, within seconds."""
    from urllib.parse import urlsplit

    from rlfleet.compute.processes import port_open

    parts = urlsplit(url or "")
    return port_open(parts.port or 80, parts.hostname or "", timeout=HEAD_PROBE_TIMEOUT_S)


def _fail_if_silent(store: TrackingStore, run: MlflowRun, url: str | None) -> RunStatus:
    tags = run.data.tags
    last = float(tags.get(record.SUPERVISOR_HEARTBEAT, run.info.start_time / 1000))
    silent = time.time() - last
    if silent < HEAD_LOST_S:
        return record.status_of(run)
    when = time.strftime("%H:%M:%S", time.localtime(last))
    return _fail(
        store,
        run.info.run_id,
        f"lost its cluster: the head ({url}) does not answer and the run's supervisor there has "
        f"written nothing since {when} ({silent:.0f} s)",
    )


def _fail(store: TrackingStore, run_id: str, reason: str) -> RunStatus:
    """End the run and its children FAILED (unless it ended meanwhile); its status after."""
    fresh = store.get_run(run_id)  # it may have ended the run just before
    if record.status_of(fresh).is_terminal():
        return record.status_of(fresh)
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
