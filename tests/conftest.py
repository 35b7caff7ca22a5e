"""Fixtures shared by the whole suite: workspaces, a warm cluster, a policy trained through
the platform."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from support import run_cli

from rlfleet import ComputeTarget, Run, Workspace

CARTPOLE = {
    "num_workers": 1,
    "num_envs_per_worker": 32,
    "sample_batch_size": 20,
    "train_batch_size": 640,
    "lr": 0.001,
    "min_time_s_per_iteration": 1,
}


class TrainedRun(NamedTuple):
    run: Run
    shown: dict[str, Any]
    """What ``rlfleet train ... --wait --json`` printed."""
    exit_code: int


# Session fixtures that start a cluster or train: the tests that use them run in one test process
# (xdist_group "warm"), so that two processes do not each start and train their own.
SHARED = {"warm_workspace", "trained_cartpole"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With two test processes (scripts/test), the multi-host tests (one group, in one process)
    start at once: they mostly wait (on autoscalers, cut cables, idle timeouts) and take
    longest; the tests of the shared warm cluster and trained policy (another group) next, in
    the other process; the rest, a module at a time, fill in."""
    # Whole modules go to one process: their module-scoped fixtures (a served policy, an
    # endpoint) start once.
    warm = {item.path for item in items if SHARED & set(getattr(item, "fixturenames", ()))}
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            group = "warm" if item.path in warm else item.path.stem
            item.add_marker(pytest.mark.xdist_group(group))

    def order(item: pytest.Item) -> int:
        group = item.get_closest_marker("xdist_group")
        return {"multihost": 0, "warm": 1}.get(group.args[0] if group else "", 2)

    items.sort(key=order)


@pytest.fixture(autouse=True)
def _keep_ray_env() -> Iterator[None]:
    """Tests may point this process at a workspace's clusters (or tracking server, with its
    credentials); undo it afterwards."""
    prefixes = ("RAY_", "MLFLOW_TRACKING_")
    saved = {k: v for k, v in os.environ.items() if k.startswith(prefixes)}
    yield
    for key in [k for k in os.environ if k.startswith(prefixes)]:
        if key not in saved:
            del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _keep_float_mode() -> Iterator[None]:
    """A learner built in this process flushes subnormal floats to zero in its thread (see
    rlfleet.impala.cpu); a test that builds one without a trainer to restore the mode must not
    leave it to the tests after it (Hypothesis refuses to draw floats then)."""
    yield
    if "torch" in sys.modules:
        sys.modules["torch"].set_flush_denormal(False)  # (off is the default)


def _make_workspace(root: Path) -> Workspace:
    ws = Workspace.init(root)
    ws.compute.create(ComputeTarget("head", cpus=1))
    ws.compute.create(ComputeTarget("workers", cpus=1, max_nodes=2))
    return ws


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh workspace with a head target and a worker target of up to 2 nodes."""
    return _make_workspace(tmp_path / "ws")


@pytest.fixture(scope="session")
def warm_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """One workspace for the session with a warm cluster (head + 1 worker node), for the
    tests that need *a* cluster but not one of their own. Started with the CLI, so that this
    process never becomes a client of it (Ray keeps some auth settings per process)."""
    ws = _make_workspace(tmp_path_factory.mktemp("warm") / "ws")
    up = run_cli("cluster", "up", "head", "--worker", "workers", "--nodes", "1", cwd=ws.root)
    assert up.code == 0, up.err
    try:
        yield ws
    finally:
        down = run_cli("cluster", "down", cwd=ws.root)
        assert down.code == 0, down.err


@pytest.fixture(scope="session")
def trained_cartpole(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """CartPole-v1 trained as a new user would: ``rlfleet train --wait --json`` in a fresh
    workspace, whose default compute (a local head and a worker node) the command creates, until
    a mean reward of 300. tests/test_train.py reads how it learned; the deploy tests evaluate,
    export and serve its policy (one training for both saves the suite a minute and a half)."""
    ws = Workspace.init(tmp_path_factory.mktemp("trained") / "ws")
    result = run_cli(
        "train",
        "--env",
        "CartPole-v1",
        "--config",
        json.dumps(CARTPOLE),
        "--stop",
        '{"episode_reward_mean": 300, "time_total_s": 150}',
        "--experiment",
        "cartpole",
        "--wait",
        "--json",
        cwd=ws.root,
        timeout=400,
    )
    assert result.out.strip(), result.err
    shown = json.loads(result.out)
    return TrainedRun(Run(shown["id"], workspace=ws), shown, result.code)
