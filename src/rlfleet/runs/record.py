"""How a run is recorded in MLflow: the tags rlfleet keeps on it and the status rule.

The status lives in the tag ``rlfleet.status`` (MLflow's own statuses are coarser; they are set
too, so MLflow's UI agrees). After submission only the run's supervisor writes the status, and a
status only moves forward: a terminal status is never left.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from rlfleet.runs.status import RunStatus

if TYPE_CHECKING:
    from mlflow.entities import Run as MlflowRun

    from rlfleet.tracking.store import TrackingStore

logger = logging.getLogger(__name__)

STATUS = "rlfleet.status"
STATUS_REASON = "rlfleet.status_reason"
ERROR = "rlfleet.error"
ROLE = "rlfleet.role"
CANCEL_REQUESTED = "rlfleet.cancel_requested"
SUPERVISOR_PID = "rlfleet.supervisor.pid"
SUPERVISOR_HOST = "rlfleet.supervisor.host"
SUPERVISOR_STARTED = "rlfleet.supervisor.started"
SUPERVISOR_JOB = "rlfleet.supervisor.job"
"""A run supervised on its cluster: the Ray job of its supervisor (see runs/remote.py)."""
SUPERVISOR_HEARTBEAT = "rlfleet.supervisor.heartbeat"
"""When the supervisor last wrote to the run (Unix time, every few seconds while it runs)."""
RAY_JOB = "rlfleet.ray_job"
CLUSTER = "rlfleet.cluster"
HEAD_TARGET = "rlfleet.compute.head"
WORKER_TARGET = "rlfleet.compute.worker"
NODE_COUNT = "rlfleet.compute.node_count"
KIND = "rlfleet.kind"
NODES_EVENT = "rlfleet.nodes"

ROLES = ("head", "worker")
TAG_VALUE_LIMIT = 4000


def status_of(run: MlflowRun) -> RunStatus:
    return RunStatus(run.data.tags.get(STATUS, RunStatus.QUEUED.value))


def orphaned(run: MlflowRun) -> bool:
    """Whether the run is not ended but its supervisor, on this machine, is gone."""
    tags = run.data.tags
    if status_of(run).is_terminal() or tags.get(SUPERVISOR_HOST) != socket.gethostname():
        return False
    return SUPERVISOR_PID in tags and not supervisor_alive(tags)


def supervisor_alive(tags: dict[str, str]) -> bool:
    """Whether the supervisor process named in the run's tags still runs (same pid, same start)."""
    import psutil

    try:
        proc = psutil.Process(int(tags[SUPERVISOR_PID]))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = tags.get(SUPERVISOR_STARTED)
        return started is None or abs(proc.create_time() - float(started)) < 1.0
    except (psutil.Error, ValueError, KeyError):
        return False


def set_status(
    store: TrackingStore,
    run_id: str,
    new: RunStatus,
    *,
    reason: str | None = None,
    error: str | None = None,
) -> bool:
    """Move the run (and its MLflow status) to ``new`` if the lifecycle allows it.

    Returns False, changing nothing, when the run is already in ``new``'s place or past it.
    """
    current = status_of(store.get_run(run_id))
    if not current.can_become(new):
        if current is not new:
            logger.info("run %s stays %s (not %s)", run_id, current.value, new.value)
        return False
    tags = {STATUS: new.value}
    if reason:
        tags[STATUS_REASON] = reason[:TAG_VALUE_LIMIT]
    if error:
        tags[ERROR] = error[-TAG_VALUE_LIMIT:]
    store.set_tags(run_id, tags)
    store.set_mlflow_status(run_id, new.mlflow_status, end=new.is_terminal())
    return True
