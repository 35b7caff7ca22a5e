"""Warm clusters: nodes kept up between runs, so that a run starts in seconds.

``rlfleet cluster up HEAD --worker WORKERS --nodes N`` starts a head node of target ``HEAD``, N
worker nodes of target ``WORKERS`` and the cluster's tracker; runs whose head target is ``HEAD``
then use it instead of starting nodes of their own. ``rlfleet cluster down HEAD`` stops it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rlfleet.compute.cluster import LocalCluster, use_workspace_token
from rlfleet.compute.target import ComputeKind
from rlfleet.errors import ClusterError, ComputeTargetError

if TYPE_CHECKING:
    from rlfleet.workspace import Workspace

logger = logging.getLogger(__name__)

WARM = "warm"


def cluster_up(
    workspace: Workspace,
    head: str,
    *,
    worker: str | None = None,
    nodes: int | None = None,
    timeout_s: float = 180.0,
) -> LocalCluster:
    """Start (or top up) the warm cluster of head target ``head``; returns once all joined."""
    from rlfleet.tracking.tracker import ensure_tracker

    head_target = workspace.compute.get(head)
    if head_target.kind is not ComputeKind.LOCAL:
        raise ComputeTargetError(
            f"compute target {head!r} is of kind {head_target.kind.value!r}: that cluster is "
            "already up; only local targets are started by rlfleet."
        )
    worker_target = workspace.compute.get(worker) if worker else None
    if worker_target is not None and worker_target.kind is not ComputeKind.LOCAL:
        raise ComputeTargetError(f"worker target {worker!r} must be of kind 'local'.")
    count = 0
    if worker_target is not None:
        count = nodes if nodes is not None else max(worker_target.min_nodes, 1)
        if not 0 <= count <= worker_target.max_nodes:
            raise ComputeTargetError(
                f"--nodes must be between 0 and {worker_target.max_nodes} "
                f"(the --max-nodes of {worker_target.name!r}), not {count}."
            )

    use_workspace_token(workspace)
    cluster = LocalCluster.warm_for(workspace, head)
    fresh = cluster is None
    if cluster is None:
        cluster = LocalCluster.start(workspace, head_target, owner=WARM)
    try:
        if worker_target is not None:
            have = [
                n for n in cluster.nodes if n.role == "worker" and n.target == worker_target.name
            ]
            cluster.add_workers(worker_target, max(0, count - len(have)), owner=WARM)
        cluster.wait_for_nodes([n.name for n in cluster.nodes], timeout_s=timeout_s)
        import ray

        ray.init(address=cluster.gcs_address, logging_level=logging.WARNING, log_to_driver=False)
        try:
            tracker = ensure_tracker(
                workspace.tracking_uri,
                {"rlfleet/role": "head", "rlfleet/cluster": cluster.cluster_id},
                workspace.tracking_credentials(),
            )
            ray.get(tracker.ready.remote(), timeout=timeout_s)
        finally:
            ray.shutdown()
    except BaseException:
        if fresh:
            cluster.stop()
        raise
    return cluster


def cluster_down(workspace: Workspace, head: str | None = None) -> list[LocalCluster]:
    """Stop the warm cluster of ``head`` (every warm cluster if ``None``); returns them."""
    stopped = []
    for cluster in LocalCluster.all(workspace):
        if cluster.owner != WARM or (head is not None and cluster.head_target != head):
            continue
        left = cluster.stop()
        if left:
            raise ClusterError(
                f"{left} processes of cluster {cluster.cluster_id} would not stop; "
                "check them with `ps` and kill them."
            )
        stopped.append(cluster)
    if head is not None and not stopped:
        raise ClusterError(
            f"no warm cluster with head target {head!r}; see `rlfleet cluster list`."
        )
    return stopped
