"""``rlfleet train``: the built-in IMPALA trainer, submitted as a run on the workspace's compute.

The trainer is an ordinary entry script to the platform (``python -m rlfleet.impala``, wrapped in
a two-line ``train_impala.py`` so that it can be the run's ``entry_script``); this module only
checks the trainer's arguments before anything is submitted, picks (or creates) the compute, and
for ``--resume`` fetches the last checkpoint of the earlier run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlfleet.compute.target import ComputeTarget
from rlfleet.errors import RlfleetError, RunSpecError
from rlfleet.runs import record
from rlfleet.runs.run import Run
from rlfleet.runs.spec import RunSpec, WorkerConfiguration
from rlfleet.runs.submit import submit

if TYPE_CHECKING:
    from rlfleet.workspace import Workspace

ENTRY_SCRIPT = "train_impala.py"
ENTRY_SOURCE = '''"""Runs rlfleet's built-in IMPALA trainer (written by `rlfleet train`)."""

import sys

from rlfleet.impala.__main__ import main

sys.exit(main(sys.argv[1:]))
'''
CHECKPOINTS = "checkpoints"
DEFAULT_HEAD, DEFAULT_WORKERS = "head", "workers"
RESUMED_FROM = "rlfleet.resumed_from"


def check_trainer_args(run: str, env: str, config: str, stop: str) -> None:
    """Refuse what the trainer would refuse (unknown key, bad JSON, unknown env) before submitting."""
    from rlfleet.impala.config import ConfigError, ImpalaConfig, StopConfig, parse_json_object
    from rlfleet.impala.envs import UnknownEnvironmentError, resolve_factory

    try:
        if run != "IMPALA":
            raise ConfigError(f"--run {run!r} is not built in; use --run IMPALA")
        ImpalaConfig.from_dict(parse_json_object(config, what="config"))
        StopConfig.from_dict(parse_json_object(stop, what="stop"))
        resolve_factory(env)
    except (ConfigError, UnknownEnvironmentError) as err:
        raise RunSpecError(str(err)) from None
    except RecursionError:
        raise RunSpecError("--config or --stop is nested too deeply to be read.") from None


def default_compute(workspace: Workspace) -> tuple[str, str]:
    """The workspace's ``head`` and ``workers`` targets, created (local) if it lacks them: a
    1-CPU head (with this machine's GPUs) for the learner, worker nodes with this machine's
    CPUs for the actors."""
    targets = workspace.compute_targets
    if DEFAULT_HEAD not in targets:
        workspace.compute.create(ComputeTarget(DEFAULT_HEAD, cpus=1, gpus=_gpu_count()))
    if DEFAULT_WORKERS not in targets:
        workspace.compute.create(
            ComputeTarget(DEFAULT_WORKERS, cpus=os.cpu_count() or 1, min_nodes=1, max_nodes=4)
        )
    return DEFAULT_HEAD, DEFAULT_WORKERS


def submit_training(
    workspace: Workspace,
    *,
    env: str | None,
    run: str = "IMPALA",
    config: str | None = None,
    stop: str | None = None,
    experiment: str | None = None,
    head: str | None = None,
    worker: str | None = None,
    nodes: int | None = None,
    resume: str | None = None,
    max_run_duration_seconds: float | None = None,
) -> Run:
    """Submit the built-in trainer as a run; returns the QUEUED run at once."""
    earlier: Run | None = Run.find(resume, workspace=workspace) if resume else None
    if earlier is not None:
        before = _script_params(earlier)
        env = env or before.get("--env")
        config = config or before.get("--config")
        stop = stop or before.get("--stop")
        experiment = experiment or earlier.experiment_name
    if not env:
        raise RunSpecError("name the environment with --env (e.g. PongNoFrameskip-v4).")
    config, stop = config or "{}", stop or "{}"
    check_trainer_args(run, env, config, stop)
    if head is None and worker is None:
        head, worker = default_compute(workspace)
    if head is None:
        raise RunSpecError("--worker needs --head too.")

    use_gpu = workspace.compute.get(head).gpus > 0  # an unknown target fails here, at once
    worker_configuration = None
    if worker is not None:
        count = nodes if nodes is not None else max(workspace.compute.get(worker).min_nodes, 1)
        worker_configuration = WorkerConfiguration(worker, node_count=count)

    source = workspace.state_dir / "train" / uuid.uuid4().hex[:12]
    source.mkdir(parents=True)
    try:
        (source / ENTRY_SCRIPT).write_text(ENTRY_SOURCE)
        params: dict[str, Any] = {"--run": run, "--env": env, "--config": config, "--stop": stop}
        tags = {record.KIND: "train"}
        if earlier is not None:
            params["--restore"] = _fetch_last_checkpoint(earlier, source)
            tags[RESUMED_FROM] = earlier.id
        spec = RunSpec(
            source_directory=str(source),
            entry_script=ENTRY_SCRIPT,
            script_params=params,
            compute_target=head,
            use_gpu=use_gpu,
            worker_configuration=worker_configuration,
            max_run_duration_seconds=max_run_duration_seconds,
        )
        return submit(workspace, spec, experiment=experiment, tags=tags)
    except RlfleetError:  # refused before anything was recorded: leave the workspace as it was
        shutil.rmtree(source, ignore_errors=True)
        raise


def _script_params(earlier: Run) -> dict[str, Any]:
    """The trainer arguments of an earlier run, from its recorded spec."""
    import yaml

    try:
        spec = yaml.safe_load(earlier.store.read_artifact(earlier.id, "run_spec.yaml"))
    except Exception:
        raise RlfleetError(f"run {earlier.id} has no recorded run spec to resume from.") from None
    if not isinstance(spec, dict):
        spec = {}
    params = spec.get("script_params")
    if spec.get("entry_script") != ENTRY_SCRIPT or not isinstance(params, dict):
        raise RlfleetError(
            f"run {earlier.id} is not a run of `rlfleet train`; it cannot be resumed."
        )
    return params


def _fetch_last_checkpoint(earlier: Run, source: Path) -> str:
    names = sorted(
        p for p in earlier.store.list_artifacts(earlier.id, CHECKPOINTS) if p.endswith(".pt")
    )
    if not names:
        raise RlfleetError(
            f"run {earlier.id} saved no checkpoint to resume from; start a new run instead."
        )
    local = earlier.store.download_artifacts(earlier.id, names[-1], source)
    return str(local.relative_to(source))


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0


__all__ = ["check_trainer_args", "submit_training"]
