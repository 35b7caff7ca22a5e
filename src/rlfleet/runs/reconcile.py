"""Runs whose supervisor died: ended FAILED when next looked at, their nodes stopped.

The supervisor is the only writer of a run's status; if it is killed (or the machine's process
table says it is gone) nothing else would end the run, so every read of a run's status on the
supervisor's machine checks it. The nodes that run started are then stopped too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

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
