"""How many nodes of a compute target are wanted and how many are up."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rlfleet.compute.auth import auth_refused, is_auth_error, target_auth_env
from rlfleet.compute.cluster import LocalCluster, alive_nodes, use_ray_auth
from rlfleet.compute.target import ComputeKind, ComputeTarget

if TYPE_CHECKING:
    from rlfleet.workspace import Workspace

logger = logging.getLogger(__name__)


@dataclass
class TargetStatus:
    """Nodes of one target: ``desired`` by runs and warm clusters, ``up`` (alive) now."""

    target: ComputeTarget
    desired: int | None
    up: int | None
    nodes: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.target.to_dict(),
            "nodes_desired": self.desired,
            "nodes_up": self.up,
            "nodes": self.nodes,
            "error": self.error,
        }


def target_status(workspace: Workspace, target: ComputeTarget) -> TargetStatus:
    if target.kind is ComputeKind.RAY:
        return _remote_status(workspace, target)
    if target.kind is ComputeKind.SSH:
        return _ssh_status(workspace, target)
    nodes = []
    for cluster in LocalCluster.prune(workspace):
        for node in cluster.nodes:
            if node.target == target.name:
                nodes.append(
                    {
                        "name": node.name,
                        "role": node.role,
                        "cluster": cluster.cluster_id,
                        "owner": node.owner,
                        "alive": node.alive(),
                    }
                )
    up = sum(1 for n in nodes if n["alive"])
    return TargetStatus(
        target, desired=max(len(nodes), target.min_nodes if nodes else 0), up=up, nodes=nodes
    )


def _remote_status(workspace: Workspace, target: ComputeTarget) -> TargetStatus:
    use_ray_auth(target_auth_env(workspace, target))
    try:
        states = alive_nodes(target.dashboard_url, timeout=5)
    except Exception as err:
        if is_auth_error(err):
            return TargetStatus(target, None, None, error=str(auth_refused(target)))
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return TargetStatus(target, None, None, error=f"cannot reach {target.address}: {first}")
    nodes = [
        {
            "name": s.node_name,
            "role": "head" if s.is_head_node else "worker",
            "address": s.node_ip,
            "alive": True,
        }
        for s in states
    ]
    return TargetStatus(target, desired=None, up=len(nodes), nodes=nodes)


def _ssh_status(workspace: Workspace, target: ComputeTarget) -> TargetStatus:
    """Per host of an ``ssh`` target: whether a node of its cluster is up there. Desired: the
    head and ``min_nodes`` workers while the cluster is up (runs ask the autoscaler for more)."""
    import socket

    from rlfleet.compute.launcher import as_ray_target

    remote = _remote_status(workspace, as_ray_target(workspace, target))
    addresses = {n.get("address") for n in remote.nodes}
    nodes = []
    for role, host in [("head", target.head_host), *(("worker", h) for h in target.hosts)]:
        try:
            address = socket.gethostbyname(host or "")
        except OSError:
            address = host
        nodes.append({"name": host, "role": role, "alive": address in addresses})
    if remote.up is None:
        note = f"not up: start it with `rlfleet cluster up {target.name}` (or submit a run)"
        return TargetStatus(target, desired=0, up=0, nodes=nodes, error=note)
    return TargetStatus(
        target,
        desired=max(remote.up, 1 + target.min_nodes),
        up=sum(n["alive"] for n in nodes),
        nodes=nodes,
    )
