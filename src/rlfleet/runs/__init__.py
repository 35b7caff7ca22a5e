"""Runs: specification, submission, supervision, status and logging."""

from rlfleet.runs.run import Run
from rlfleet.runs.spec import RunSpec, WorkerConfiguration
from rlfleet.runs.status import RunStatus

__all__ = ["Run", "RunSpec", "RunStatus", "WorkerConfiguration"]
