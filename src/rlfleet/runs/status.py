"""The lifecycle of a run: ``QUEUED → STARTING → RUNNING → COMPLETED | FAILED | CANCELED``."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run is in its lifecycle. A terminal status is never left."""

    QUEUED = "QUEUED"
    """Accepted; its supervisor has not started the cluster yet."""
    STARTING = "STARTING"
    """The cluster is coming up and the entry script is being submitted."""
    RUNNING = "RUNNING"
    """The entry script runs on the cluster."""
    COMPLETED = "COMPLETED"
    """The entry script exited with status 0."""
    FAILED = "FAILED"
    """The entry script failed, or the cluster could not come up or died."""
    CANCELED = "CANCELED"
    """Canceled by a user or because it ran past ``max_run_duration_seconds``."""

    def is_terminal(self) -> bool:
        return self in _TERMINAL

    def can_become(self, new: RunStatus) -> bool:
        """Whether a run in this status may move to ``new`` (only forward, never out of an end)."""
        return not self.is_terminal() and _ORDER[new] > _ORDER[self]

    @property
    def mlflow_status(self) -> str:
        """The nearest MLflow run status, so MLflow's own UI shows something sensible."""
        return _MLFLOW[self]


_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED})
_ORDER = {
    RunStatus.QUEUED: 0,
    RunStatus.STARTING: 1,
    RunStatus.RUNNING: 2,
    RunStatus.COMPLETED: 3,
    RunStatus.FAILED: 3,
    RunStatus.CANCELED: 3,
}
_MLFLOW = {
    RunStatus.QUEUED: "SCHEDULED",
    RunStatus.STARTING: "SCHEDULED",
    RunStatus.RUNNING: "RUNNING",
    RunStatus.COMPLETED: "FINISHED",
    RunStatus.FAILED: "FAILED",
    RunStatus.CANCELED: "KILLED",
}
