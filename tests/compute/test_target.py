"""Compute targets: validation and the workspace's store of them."""

from __future__ import annotations

import pytest

from rlfleet import ComputeKind, ComputeTarget
from rlfleet.errors import ComputeTargetError, ComputeTargetNotFoundError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "has space"}, "not allowed"),
        ({"name": "ends-"}, "not allowed"),
        ({"name": "ok", "cpus": 0}, "--cpus"),
        ({"name": "ok", "gpus": -1}, "--gpus"),
        ({"name": "ok", "memory_gb": 0}, "--memory"),
        ({"name": "ok", "max_nodes": 0}, "--max-nodes"),
        ({"name": "ok", "min_nodes": 5, "max_nodes": 2}, "--min-nodes"),
        ({"name": "ok", "kind": "ray"}, "needs --address"),
        ({"name": "ok", "address": "1.2.3.4:6379"}, "--address is for targets of kind 'ray'"),
    ],
)
def test_invalid_targets(kwargs, message):
    with pytest.raises(ComputeTargetError, match=message):
        ComputeTarget(**kwargs)


def test_store_round_trip(workspace):
    target = ComputeTarget("gpu-head", cpus=6, gpus=1, memory_gb=56, max_nodes=2)
    workspace.compute.create(target)
    assert workspace.compute.get("gpu-head") == target
    assert set(workspace.compute_targets) == {"head", "workers", "gpu-head"}
    remote = workspace.compute.create(
        ComputeTarget("lab", kind=ComputeKind.RAY, address="10.0.0.5:6379")
    )
    assert workspace.compute.get("lab").kind is ComputeKind.RAY
    workspace.compute.delete("gpu-head")
    with pytest.raises(ComputeTargetNotFoundError, match="known: head, lab, workers"):
        workspace.compute.get("gpu-head")
    assert remote.to_dict()["kind"] == "ray"
