"""Submitting a run: check the spec, record the run as QUEUED, start its supervisor."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import psutil

from rlfleet.compute.cluster import ray_auth_env
from rlfleet.runs import record
from rlfleet.runs.run import Run
from rlfleet.runs.status import RunStatus

if TYPE_CHECKING:
    from rlfleet.runs.spec import RunSpec
    from rlfleet.workspace import Workspace

_PARAM_LIMIT = 6000  # MLflow's limit for a param value


def submit(
    workspace: Workspace,
    spec: RunSpec,
    *,
    experiment: str | None = None,
    name: str | None = None,
    tags: dict[str, str] | None = None,
) -> Run:
    """Submit ``spec`` as a run of ``experiment``; returns at once with the QUEUED run.

    Raises:
        RunSpecError, ComputeTargetNotFoundError: the spec cannot run in this workspace; nothing
            is recorded.
    """
    resolved = spec.resolve(workspace)
    spec = resolved.spec
    store = workspace.tracking
    experiment_id = store.experiment(
        experiment or workspace.config.default_experiment
    ).experiment_id
    run_tags = {
        **(tags or {}),
        record.STATUS: RunStatus.QUEUED.value,
        record.KIND: "submitted",
        record.HEAD_TARGET: resolved.head.name,
        record.NODE_COUNT: str(resolved.node_count),
        "mlflow.source.name": spec.entry_script,
    }
    if resolved.workers is not None:
        run_tags[record.WORKER_TARGET] = resolved.workers.name
    run_id = store.create_run(experiment_id, name=name, tags=run_tags)
    store.set_mlflow_status(run_id, RunStatus.QUEUED.mlflow_status, end=False)
    run_dir = workspace.runs_dir / run_id
    run_dir.mkdir(parents=True)
    spec_yaml = spec.to_yaml()
    (run_dir / "spec.yaml").write_text(spec_yaml)
    store.log_text(run_id, spec_yaml, "run_spec.yaml")
    _log_params(workspace, run_id, spec)

    proc = _start_supervisor(workspace, run_id)
    store.set_tags(
        run_id,
        {
            record.SUPERVISOR_PID: str(proc.pid),
            record.SUPERVISOR_HOST: socket.gethostname(),
            record.SUPERVISOR_STARTED: str(psutil.Process(proc.pid).create_time()),
        },
    )
    return Run(run_id, workspace=workspace)


def _start_supervisor(workspace: Workspace, run_id: str) -> subprocess.Popen[bytes]:
    import os

    run_dir = workspace.runs_dir / run_id
    env = {**os.environ, **ray_auth_env(workspace)}
    env.pop("RAY_ADDRESS", None)
    with open(run_dir / "supervisor.log", "wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rlfleet.runs.supervisor",
                "--workspace",
                str(workspace.root),
                "--run-id",
                run_id,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _log_params(workspace: Workspace, run_id: str, spec: RunSpec) -> None:
    from mlflow.entities import Param

    params = {
        "entry_script": spec.entry_script,
        "compute_target": spec.compute_target,
        "use_gpu": spec.use_gpu,
        "max_run_duration_seconds": spec.max_run_duration_seconds,
    }
    if spec.worker_configuration is not None:
        params["worker_compute_target"] = spec.worker_configuration.compute_target
        params["worker_node_count"] = spec.worker_configuration.node_count
    if isinstance(spec.script_params, dict):
        for flag, value in spec.script_params.items():
            params[f"script_params.{str(flag).lstrip('-')}"] = value
    batch = [Param(k, str(v)[:_PARAM_LIMIT]) for k, v in params.items() if v is not None]
    workspace.tracking.client.log_batch(run_id, params=batch)
