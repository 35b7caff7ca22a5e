"""Experiments group runs by name (an MLflow experiment underneath), as the seed's Experiment."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

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

    def train(
        self,
        *,
        env: str | None,
        run: str | None = None,
        config: str | Mapping[str, Any] | None = None,
        stop: str | Mapping[str, Any] | None = None,
        source_directory: str | os.PathLike[str] | None = None,
        pip_packages: Sequence[str] | None = None,
        head: str | None = None,
        worker: str | None = None,
        nodes: int | None = None,
        resume: str | None = None,
        max_run_duration_seconds: float | None = None,
        environment_variables: Mapping[str, str] | None = None,
    ) -> Run:
        """Train with the built-in trainer as a run of this experiment (``rlfleet train``).

        Example::

            exp = Experiment(Workspace.from_config(), "corridor")
            run = exp.train(env="corridor:CorridorEnv", source_directory="envs", run="PPO",
                            config={"env_config": {"length": 6}},
                            stop={"episode_reward_mean": 0.8, "time_total_s": 120})
            run.wait_for_completion(show_output=True)

        Args:
            env: The environment: a Gymnasium id, ``module:Id-v0`` or ``module:Class`` (its
                module in ``source_directory``); None only with ``resume``.
            run: The algorithm: ``IMPALA`` (default), ``APPO`` or ``PPO``.
            config: The trainer config, a mapping or JSON text; ``env_config`` goes to the env.
            stop: The stop criteria, a mapping or JSON text.
            source_directory: The folder of the environment's code, shipped to every node and
                saved with the run.
            pip_packages: Packages installed for the run on every node.
            head: The head node's compute target (default ``head``, created if need be).
            worker: The worker nodes' compute target (default ``workers``).
            nodes: How many worker nodes.
            resume: An earlier training run to continue from its last checkpoint.
            max_run_duration_seconds: Cancel the run after this long.
            environment_variables: For the trainer and its actors.

        Returns:
            The QUEUED run.

        Raises:
            RunSpecError: a bad argument, environment or source directory; nothing is recorded.
            ComputeTargetNotFoundError: ``head`` or ``worker`` is not a target of the workspace.
        """
        from rlfleet.train import submit_training

        return submit_training(
            self.workspace,
            env=env,
            run=run,
            config=config,
            stop=stop,
            source_directory=source_directory,
            pip_packages=pip_packages,
            experiment=self.name,
            head=head,
            worker=worker,
            nodes=nodes,
            resume=resume,
            max_run_duration_seconds=max_run_duration_seconds,
            environment_variables=environment_variables,
        )

    def get_runs(self) -> list[Run]:
        """This experiment's top-level runs, newest first."""
        store = self.workspace.tracking
        runs = store.search_runs([self.id])
        return [
            Run(r.info.run_id, workspace=self.workspace)
            for r in runs
            if "mlflow.parentRunId" not in r.data.tags
        ]
