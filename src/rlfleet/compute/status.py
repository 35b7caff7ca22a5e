"""How many nodes of a compute target are wanted and how many are up."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rlfleet.compute.cluster import LocalCluster
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
        return _remote_status(target)
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


def _remote_status(target: ComputeTarget) -> TargetStatus:
    from ray.util.state import list_nodes

    try:
        states = list_nodes(address=target.address, filters=[("state", "=", "ALIVE")], timeout=5)
    except Exception as err:
        return TargetStatus(target, None, None, error=f"cannot reach {target.address}: {err}")
    nodes = [
        {"name": s.node_name, "role": "head" if s.is_head_node else "worker", "alive": True}
        for s in states
    ]
    return TargetStatus(target, desired=None, up=len(nodes), nodes=nodes)
