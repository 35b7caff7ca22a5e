"""Experiments group runs by name (an MLflow experiment underneath), as the seed's Experiment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlfleet.runs.run import Run

if TYPE_CHECKING:
    from rlfleet.runs.spec import RunSpec
    from rlfleet.workspace import Workspace


class Experiment:
    """A named group of runs in a workspace."""

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r})"

    @property
    def id(self) -> str:
        return self.workspace.tracking.experiment(self.name).experiment_id

    def submit(self, config: RunSpec, *, name: str | None = None) -> Run:
        """Submit a run spec; returns the QUEUED run at once (the seed's ``exp.submit``)."""
        from rlfleet.runs.submit import submit

        return submit(self.workspace, config, experiment=self.name, name=name)

    def get_runs(self) -> list[Run]:
        """This experiment's top-level runs, newest first."""
        store = self.workspace.tracking
        runs = store.search_runs([self.id])
        return [
            Run(r.info.run_id, workspace=self.workspace)
            for r in runs
            if "mlflow.parentRunId" not in r.data.tags
        ]
