"""What the live views show about a run, read from the store and the workspace in one go."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rlfleet.monitor.progress import Criterion, criteria
from rlfleet.runs import record
from rlfleet.runs.reconcile import reconcile
from rlfleet.runs.status import RunStatus

if TYPE_CHECKING:
    from rlfleet.runs.run import Run
    from rlfleet.tracking.store import MetricPoint

REWARD = "episode_reward_mean"
SPEED = "sample_throughput"


@dataclass
class Snapshot:
    """A run at one moment."""

    run_id: str
    name: str
    experiment: str
    status: RunStatus
    reason: str | None
    elapsed_s: float
    nodes_up: int
    nodes_total: int
    metrics: dict[str, float]
    rewards: list[float]  # episode_reward_mean points with a value (no NaN before episode 1)
    steps_per_s: float | None
    criteria: list[Criterion]
    children: list[dict[str, Any]] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)


class RunObserver:
    """Takes snapshots of one run; remembers what does not change (its stop criteria)."""

    def __init__(self, run: Run, *, log_lines: int = 8) -> None:
        self.run = run
        self.log_lines = log_lines
        self._stop: dict[str, float] | None = None
        self._max_duration: float | None = None

    def snapshot(self) -> Snapshot:
        run = self.run
        store = run.store
        data = store.get_run(run.id)
        status = reconcile(store, data, run.workspace)
        tags, info = data.data.tags, data.info
        if self._stop is None:
            self._stop, self._max_duration = self._stop_criteria()
        names = {REWARD, SPEED, *self._stop}
        histories = {n: store.metric_history(run.id, n) for n in names if n in data.data.metrics}
        end_ms = info.end_time if status.is_terminal() and info.end_time else time.time() * 1000
        elapsed = max(0.0, (end_ms - info.start_time) / 1000)
        up, total = self._nodes(tags, status)
        return Snapshot(
            run_id=run.id,
            name=info.run_name or "",
            experiment=store.experiment_name(info.experiment_id),
            status=status,
            reason=tags.get(record.STATUS_REASON),
            elapsed_s=elapsed,
            nodes_up=up,
            nodes_total=total,
            metrics=dict(data.data.metrics),
            # NaN until the first episode ends: not a reward yet
            rewards=[p.value for p in histories.get(REWARD, []) if math.isfinite(p.value)],
            steps_per_s=_speed(histories),
            criteria=criteria(
                self._stop, histories, elapsed_s=elapsed, max_duration_s=self._max_duration
            ),
            children=sorted(
                (
                    {"role": c.data.tags.get(record.ROLE), "status": c.data.tags.get(record.STATUS)}
                    for c in store.children(data)
                ),
                key=lambda c: str(c["role"]),  # head before worker
            ),
            log_tail=self._log_tail(),
        )

    def _stop_criteria(self) -> tuple[dict[str, float], float | None]:
        """``--stop`` of the run's script parameters (the seed's convention) and its time limit."""
        import yaml

        try:
            spec = yaml.safe_load(self.run.store.read_artifact(self.run.id, "run_spec.yaml"))
        except Exception:
            return {}, None
        if not isinstance(spec, dict):
            return {}, None
        params = spec.get("script_params") or {}
        if isinstance(params, list):
            params = dict(zip(params[::2], params[1::2], strict=False))
        stop: dict[str, float] = {}
        try:
            loaded = json.loads(str(params.get("--stop", "{}")).strip("'"))
            stop = {k: float(v) for k, v in loaded.items() if isinstance(v, int | float)}
        except (ValueError, AttributeError):
            pass
        return stop, spec.get("max_run_duration_seconds")

    def _nodes(self, tags: dict[str, str], status: RunStatus) -> tuple[int, int]:
        expected = 1 + int(tags.get(record.NODE_COUNT, 0))
        workspace = self.run.workspace
        cluster_id = tags.get(record.CLUSTER)
        if status.is_terminal() or workspace is None or not cluster_id:
            return 0, expected
        from rlfleet.compute.cluster import LocalCluster

        path = workspace.clusters_dir / f"{cluster_id}.json"
        if not path.exists():
            return 0, expected
        nodes = LocalCluster.load(path).nodes
        return sum(n.alive() for n in nodes), max(expected, len(nodes))

    def _log_tail(self) -> list[str]:
        if not self.log_lines:
            return []
        lines = [line for line in self.run.driver_log().splitlines() if line.strip()]
        return lines[-self.log_lines :]


def _speed(histories: dict[str, list[MetricPoint]]) -> float | None:
    if histories.get(SPEED):
        return histories[SPEED][-1].value
    steps = histories.get("timesteps_total", [])
    if len(steps) >= 2 and steps[-1].timestamp > steps[-2].timestamp:
        return (steps[-1].value - steps[-2].value) / (
            (steps[-1].timestamp - steps[-2].timestamp) / 1000
        )
    return None
