"""The cluster a run runs on, held for the run's lifetime.

For a ``local`` head target the run uses the warm cluster of that target if ``rlfleet cluster
up`` started one, else it starts its own head node; worker nodes the run needs beyond the warm
ones are started for it. Whatever the run started is stopped when it ends. A ``ray`` head target
is an existing cluster: nothing is started or stopped there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rlfleet.compute.auth import auth_refused, is_auth_error, target_auth_env
from rlfleet.compute.cluster import (
    LocalCluster,
    NodeRecord,
    alive_nodes,
    use_ray_auth,
    use_workspace_token,
)
from rlfleet.compute.target import ComputeKind, ComputeTarget
from rlfleet.errors import ClusterError

if TYPE_CHECKING:
    from rlfleet.runs.spec import ResolvedSpec
    from rlfleet.workspace import Workspace

logger = logging.getLogger(__name__)


@dataclass
class ClusterLease:
    """A run's hold on a cluster: where to reach it and what to stop at the end."""

    gcs_address: str
    local: LocalCluster | None = None
    owns_cluster: bool = False
    started_nodes: list[NodeRecord] = field(default_factory=list)
    node_names: list[str] = field(default_factory=list)
    worker_count: int = 0
    worker_target: ComputeTarget | None = None
    worker_use_gpu: bool = False
    object_store_bytes: int | None = None
    restarts: dict[str, int] = field(default_factory=dict)
    remote: ComputeTarget | None = None
    """The ``ray`` target whose existing cluster this is (``None`` for local clusters)."""
    requested: bool = False
    """Whether nodes were asked of the cluster's autoscaler (:meth:`request_nodes`)."""

    @property
    def cluster_id(self) -> str:
        return self.local.cluster_id if self.local else self.gcs_address

    @property
    def label_selector(self) -> dict[str, str]:
        """Where the head node's own actors go (the tracker)."""
        if self.local is None:
            return {}
        return {"rlfleet/role": "head", "rlfleet/cluster": self.local.cluster_id}

    def dashboard_url(self) -> str:
        """The Jobs API address: the local cluster's, else looked up in the cluster's GCS."""
        if self.local is not None:
            return self.local.dashboard_url
        if self.remote is not None and self.remote.dashboard_url:
            return self.remote.dashboard_url
        import ray

        # An existing cluster: its dashboard address is what ray.init reports.
        try:
            context = ray.init(address=self.gcs_address, logging_level=logging.WARNING)
        except Exception as err:
            if self.remote is not None and is_auth_error(err):
                raise auth_refused(self.remote) from None
            raise
        url = context.dashboard_url
        ray.shutdown()
        if not url:
            raise ClusterError(
                f"the Ray cluster at {self.gcs_address} runs no dashboard, which its Jobs API "
                "needs; start its head with --include-dashboard=true."
            )
        return url if url.startswith("http") else f"http://{url}"

    def wait(self, timeout_s: float, should_stop: Callable[[], bool]) -> None:
        if self.local is not None and not self.started_nodes:
            # A warm cluster's nodes joined when `rlfleet cluster up` started them.
            nodes = [self.local.node(name) for name in self.node_names]
            if all(node is not None and node.alive() for node in nodes):
                return
        if self.local is not None:
            self.local.wait_for_nodes(self.node_names, timeout_s=timeout_s, should_stop=should_stop)
        else:
            self.request_nodes()
            _wait_for_node_count(
                self.gcs_address, self.worker_count + 1, timeout_s, should_stop, self.remote
            )

    def request_nodes(self) -> None:
        """On an existing cluster with an autoscaler (an ``ssh`` target's): ask it for the
        run's worker nodes (Ray's ``request_resources``: room for one node's CPUs per node the
        run needs, the head's included); a cluster without one ignores it. Connects this
        process to the cluster (as the supervisor's driver)."""
        import ray
        from ray.autoscaler.sdk import request_resources

        from rlfleet.tracking.tracker import NAMESPACE

        if not self.worker_count:
            return
        if not ray.is_initialized():
            ray.init(
                address=self.gcs_address,
                namespace=NAMESPACE,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        cpus = self.worker_target.cpus if self.worker_target is not None else 1
        request_resources(bundles=[{"CPU": cpus}] * (self.worker_count + 1))
        self.requested = True

    def worker_nodes(self) -> dict[str, str]:
        """Ray node id → node name, for the worker nodes this run uses."""
        states = alive_nodes(self.gcs_address, timeout=10)
        found = {}
        for state in states:
            name = state.labels.get("rlfleet/node") or state.node_name or state.node_id[:8]
            if self.local is not None:
                if name in self.node_names and name != "head":
                    found[state.node_id] = name
            elif not state.is_head_node:
                found[state.node_id] = f"node-{state.node_id[:8]}"
        return found

    def restart_lost_workers(self, max_restarts_per_node: int = 3) -> list[str]:
        """Start again the worker nodes this run started that have died (each at most
        ``max_restarts_per_node`` times); returns the names of the nodes restarted."""
        if self.local is None or self.worker_target is None:
            return []
        restarted = []
        for index, node in enumerate(self.started_nodes):
            if node.role != "worker" or node.alive():
                continue
            if self.restarts.get(node.name, 0) >= max_restarts_per_node:
                continue
            self.restarts[node.name] = self.restarts.get(node.name, 0) + 1
            self.started_nodes[index] = self.local.restart_worker(
                node,
                self.worker_target,
                use_gpu=self.worker_use_gpu,
                object_store_bytes=self.object_store_bytes,
            )
            restarted.append(node.name)
        return restarted

    def withdraw_request(self) -> None:
        """Withdraw the request of :meth:`request_nodes` (while connected): the nodes go away
        once idle for the autoscaler's idle timeout, down to its minimum."""
        if not self.requested:
            return
        import ray
        from ray.autoscaler.sdk import request_resources

        try:
            if ray.is_initialized():
                request_resources(bundles=[])
                self.requested = False
        except Exception as err:
            logger.warning("could not withdraw the request for nodes: %s", err)

    def release(self) -> int:
        """Stop what the run started; returns how many of its processes were still left."""
        if self.local is None:
            return 0
        if self.owns_cluster:
            return self.local.stop()
        if self.started_nodes:
            return self.local.stop_nodes(self.started_nodes)
        return 0


def acquire(workspace: Workspace, resolved: ResolvedSpec, owner: str) -> ClusterLease:
    """Find or start the nodes the run needs (returns at once; then :meth:`ClusterLease.wait`)."""
    spec, head, workers = resolved.spec, resolved.head, resolved.workers
    count = resolved.node_count
    if head.kind is ComputeKind.RAY:
        assert head.address is not None
        use_ray_auth(target_auth_env(workspace, head))
        return ClusterLease(
            gcs_address=head.address, worker_count=count, remote=head, worker_target=workers
        )

    use_workspace_token(workspace)
    cluster = LocalCluster.warm_for(workspace, head.name)
    lease = ClusterLease(gcs_address="", owns_cluster=cluster is None)
    if cluster is None:
        cluster = LocalCluster.start(
            workspace, head, owner=owner, use_gpu=spec.use_gpu, object_store_bytes=spec.shm_bytes
        )
        lease.started_nodes.append(cluster.nodes[0])
    lease.local, lease.gcs_address = cluster, cluster.gcs_address
    lease.node_names = ["head"]
    if workers is not None and count:
        warm = [
            n
            for n in cluster.nodes
            if n.role == "worker" and n.target == workers.name and n.owner == "warm" and n.alive()
        ][:count]
        worker_config = spec.worker_configuration
        assert worker_config is not None
        started = cluster.add_workers(
            workers,
            count - len(warm),
            owner=owner,
            use_gpu=worker_config.use_gpu,
            object_store_bytes=spec.shm_bytes,
        )
        lease.started_nodes.extend(started)
        lease.node_names += [n.name for n in warm + started]
        lease.worker_target = workers
        lease.worker_use_gpu = worker_config.use_gpu
        lease.object_store_bytes = spec.shm_bytes
    lease.worker_count = len(lease.node_names) - 1
    return lease


def _wait_for_node_count(
    gcs_address: str,
    count: int,
    timeout_s: float,
    should_stop: Callable[[], bool],
    target: ComputeTarget | None = None,
) -> None:
    """Wait until the cluster at ``gcs_address`` has ``count`` nodes alive; a cluster that
    refuses ``target``'s token is an error at once, not a wait for nodes."""
    deadline = time.monotonic() + timeout_s
    alive = 0
    while True:
        try:
            alive = len(alive_nodes(gcs_address, timeout=5))
        except Exception as err:
            if target is not None and is_auth_error(err):
                raise auth_refused(target) from None
            logger.debug("cluster at %s not reachable yet: %s", gcs_address, err)
        if alive >= count:
            return
        if should_stop():
            raise ClusterError("stopped while waiting for the cluster")
        if time.monotonic() > deadline:
            raise ClusterError(
                f"the cluster at {gcs_address} had {alive} of the {count} nodes the run needs "
                f"after {timeout_s:g} s (cluster_coordination_timeout_seconds)."
            )
        time.sleep(0.5)
