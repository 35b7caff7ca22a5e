"""Submitting a run: check the spec, record the run as QUEUED, start its supervisor."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from rlfleet.compute.auth import target_auth_env
from rlfleet.compute.jobs import jobs_client
from rlfleet.compute.target import ComputeKind
from rlfleet.errors import ClusterError, RunSpecError
from rlfleet.runs import record
from rlfleet.runs.remote import check_store_reachable, start_supervisor_job
from rlfleet.runs.run import Run
from rlfleet.runs.status import RunStatus

if TYPE_CHECKING:
    from rlfleet.runs.spec import ResolvedSpec, RunSpec
    from rlfleet.workspace import Workspace

_PARAM_LIMIT = 6000  # MLflow's limit for a param value


def run_name(spec: RunSpec) -> str:
    """A run's name by default: what it trains (``IMPALA PongNoFrameskip-v4``) where its script
    takes the seed's ``--run`` and ``--env`` (the built-in trainer does), else its entry script."""
    params = spec.script_params or {}
    algorithm, env = params.get("--run"), params.get("--env")
    if algorithm and env:
        return f"{algorithm} {env}"
    return spec.entry_script


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
    jobs, view, stop_after = None, resolved, None
    if resolved.head.kind is ComputeKind.SSH:  # the user's hosts: Ray's launcher starts Ray
        view = _as_existing_cluster(workspace, resolved)
        check_store_reachable(workspace, view.head)
        if not Path(resolved.head.ssh_key or "").is_file():
            raise RunSpecError(
                f"the SSH key of compute target {resolved.head.name!r} "
                f"({resolved.head.ssh_key}) is not a file here."
            )
    elif resolved.head.kind is ComputeKind.RAY:  # supervised on the cluster: runs/remote.py
        check_store_reachable(workspace, resolved.head)
        jobs = jobs_client(workspace, resolved.head)
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
    run_id = store.create_run(experiment_id, name=name or run_name(spec), tags=run_tags)
    store.set_mlflow_status(run_id, RunStatus.QUEUED.mlflow_status, end=False)
    run_dir = workspace.runs_dir / run_id
    run_dir.mkdir(parents=True)
    spec_yaml = spec.to_yaml()
    (run_dir / "spec.yaml").write_text(spec_yaml)
    store.log_text(run_id, spec_yaml, "run_spec.yaml")
    _log_params(workspace, run_id, spec)

    if resolved.head.kind is ComputeKind.SSH:
        from rlfleet.compute import launcher

        try:
            record.set_status(store, run_id, RunStatus.STARTING)
            started = launcher.cluster_up(workspace, resolved.head)
            jobs = jobs_client(workspace, view.head)
        except ClusterError as err:
            record.set_status(store, run_id, RunStatus.FAILED, reason=str(err), error=str(err))
            raise
        stop_after = launcher.stop_from_head_command(resolved.head) if started else None
    if jobs is not None:
        try:
            job_id = start_supervisor_job(
                jobs, workspace, run_id, view, stop_cluster_after=stop_after
            )
        except ClusterError as err:
            record.set_status(store, run_id, RunStatus.FAILED, reason=str(err), error=str(err))
            raise
        store.set_tags(
            run_id,
            {
                record.SUPERVISOR_JOB: job_id,
                record.SUPERVISOR_HOST: f"cluster {resolved.head.address}",
            },
        )
        return Run(run_id, workspace=workspace)
    proc = _start_supervisor(workspace, run_id, target_auth_env(workspace, resolved.head))
    store.set_tags(
        run_id,
        {
            record.SUPERVISOR_PID: str(proc.pid),
            record.SUPERVISOR_HOST: socket.gethostname(),
            record.SUPERVISOR_STARTED: str(psutil.Process(proc.pid).create_time()),
        },
    )
    return Run(run_id, workspace=workspace)


def _as_existing_cluster(workspace: Workspace, resolved: ResolvedSpec) -> ResolvedSpec:
    """An ``ssh`` target's spec as one for the cluster it makes (a ``ray`` target's view)."""
    from dataclasses import replace

    from rlfleet.compute.launcher import as_ray_target

    head = as_ray_target(workspace, resolved.head)
    workers = None if resolved.workers is None else as_ray_target(workspace, resolved.workers)
    return replace(resolved, head=head, workers=workers)


def _start_supervisor(
    workspace: Workspace, run_id: str, auth_env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """The run's supervisor, a process of its own; ``auth_env``: Ray's auth variables for the
    run's cluster (the workspace's token, or an existing cluster's own)."""
    import os

    run_dir = workspace.runs_dir / run_id
    env = {**os.environ, **auth_env}
    env.pop("RAY_ADDRESS", None)
    if "RAY_AUTH_TOKEN_PATH" in auth_env:
        env.pop("RAY_AUTH_TOKEN", None)
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
