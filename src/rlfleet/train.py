"""``rlfleet train``: the built-in trainer, submitted as a run on the workspace's compute.

The trainer is an ordinary entry script to the platform (``python -m rlfleet.impala``, wrapped in
a two-line ``train_impala.py`` so that it can be the run's ``entry_script``); this module checks
the trainer's arguments before anything is submitted, picks (or creates) the compute, copies the
user's environment code (``source_directory``) next to the entry script, so that Ray ships it to
every node and puts it on every process's import path, records that code with the run, and for
``resume`` fetches the last checkpoint (and the environment code) of the earlier run.

The same training as a YAML file (``rlfleet train --spec train.yaml``), field names as in the
run spec::

    source_directory: envs            # the environment's code, relative to this file
    script_params:
      --run: PPO
      --env: corridor:Corridor-v0
      --config: {num_workers: 1, env_config: {length: 6}}
      --stop: {episode_reward_mean: 0.8, time_total_s: 120}
    compute_target: head
    worker_configuration: {compute_target: workers, node_count: 1}
    pip_packages: []
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlfleet.compute.target import ComputeTarget
from rlfleet.deploy import envcode
from rlfleet.errors import RlfleetError, RunSpecError
from rlfleet.runs import record
from rlfleet.runs.run import Run
from rlfleet.runs.spec import RunSpec, WorkerConfiguration, read_yaml
from rlfleet.runs.submit import submit

if TYPE_CHECKING:
    from rlfleet.workspace import Workspace

ENTRY_SCRIPT = "train_impala.py"
ENTRY_SOURCE = '''"""Runs rlfleet's built-in trainer (written by `rlfleet train`)."""

import sys

from rlfleet.impala.__main__ import main

sys.exit(main(sys.argv[1:]))
'''
CHECKPOINTS = "checkpoints"
DEFAULT_HEAD, DEFAULT_WORKERS = "head", "workers"
DEFAULT_RUN = "IMPALA"
RESUMED_FROM = "rlfleet.resumed_from"
TRAINER_PARAMS = ("--run", "--env", "--config", "--stop")
"""The ``script_params`` a training spec may give."""

JsonArg = str | Mapping[str, Any] | None
"""A ``config`` or ``stop`` argument: JSON text, or a mapping (the SDK's and YAML's form)."""


def check_trainer_args(
    run: str,
    env: str,
    config: str,
    stop: str,
    *,
    source_directory: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse what the trainer would refuse, before anything is recorded or started.

    Args:
        run: The algorithm (``--run``).
        env: The environment (``--env``): a Gymnasium or Atari id, ``module:Id-v0`` (an id the
            module registers) or ``module:Class`` (a class or factory making a gymnasium.Env).
        config: The trainer config as JSON text; its ``env_config`` goes to the environment.
        stop: The stop criteria as JSON text.
        source_directory: The folder holding the environment's module, if it is the user's own.

    Raises:
        RunSpecError: unknown run or config key, bad JSON, an unknown environment, one that is
            not an environment, fails to build, or has a space the trainer does not support.
    """
    from rlfleet.impala.config import ConfigError, StopConfig, config_class, parse_json_object
    from rlfleet.impala.envs import UnknownEnvironmentError, UnsupportedEnvironmentError, check_env

    try:
        trainer_config = config_class(run).from_dict(parse_json_object(config, what="config"))
        StopConfig.from_dict(parse_json_object(stop, what="stop"))
    except ConfigError as err:
        raise RunSpecError(str(err)) from None
    except RecursionError:
        raise RunSpecError("--config or --stop is nested too deeply to be read.") from None
    if source_directory is not None:
        envcode.forget_stale_modules(source_directory)  # a same-named module checked before
    try:
        check_env(env, trainer_config.env_config, source_directory=source_directory)
    except (UnknownEnvironmentError, UnsupportedEnvironmentError) as err:
        raise RunSpecError(str(err)) from None


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
    run: str | None = None,
    config: JsonArg = None,
    stop: JsonArg = None,
    source_directory: str | os.PathLike[str] | None = None,
    pip_packages: Sequence[str] | None = None,
    experiment: str | None = None,
    head: str | None = None,
    worker: str | None = None,
    nodes: int | None = None,
    resume: str | None = None,
    max_run_duration_seconds: float | None = None,
    environment_variables: Mapping[str, str] | None = None,
    cluster_coordination_timeout_seconds: float | None = None,
    shm_size: int | str | None = None,
    use_gpu: bool | None = None,
) -> Run:
    """Submit the built-in trainer as a run; returns the QUEUED run at once.

    Args:
        workspace: The workspace whose compute runs it and whose store records it.
        env: The environment: a Gymnasium or Atari id (``CartPole-v1``), ``module:Id-v0`` (an id
            registered by ``module``, Gymnasium's own form) or ``module:Class`` (a class or
            factory making a ``gymnasium.Env``, called with ``config["env_config"]``); None
            only with ``resume``.
        run: The algorithm (``IMPALA``, ``APPO``, ``PPO``); default IMPALA, or the earlier run's.
        config: The trainer config: JSON text or a mapping (``{"num_workers": 2}``).
        stop: The stop criteria: JSON text or a mapping (``{"episode_reward_mean": 18}``).
        source_directory: A folder with the environment's code (``module`` above). It is copied
            into the run's source folder, which Ray ships to the head and every worker node and
            puts on the import path of the trainer and its actors, and saved with the run (its
            ``environment/`` artifacts), so that evaluate, export, deploy and play can rebuild
            the environment from the run alone.
        pip_packages: Packages Ray's runtime env installs for the run on every node.
        experiment: The experiment's name (default: the workspace's, or the earlier run's).
        head: The head node's compute target (the learner); default ``head``, created if need be.
        worker: The worker nodes' compute target (the actors); default ``workers``.
        nodes: How many worker nodes (default: the worker target's minimum, at least 1).
        resume: An earlier run of ``rlfleet train`` to continue from its last checkpoint, with
            its arguments, environment code and packages unless given again here.
        max_run_duration_seconds: Cancel the run after this long.
        environment_variables: For the trainer and every actor it starts.
        cluster_coordination_timeout_seconds: How long the nodes may take to join.
        shm_size: Ray's object store on each node, bytes or e.g. ``"2g"``.
        use_gpu: Offer the head target's GPUs to the learner (default: if the target has some).

    Returns:
        The QUEUED run.

    Raises:
        RunSpecError: a bad argument, environment or source directory; nothing is recorded.
        ComputeTargetNotFoundError: ``head`` or ``worker`` is not a target of the workspace.
        RunNotFoundError: ``resume`` names no run.
    """
    earlier: Run | None = Run.find(resume, workspace=workspace) if resume else None
    earlier_code: Path | None = None
    if earlier is not None:
        before, before_spec = _script_params(earlier)
        env = env or before.get("--env")
        run = run or before.get("--run")
        config = config or before.get("--config")
        stop = stop or before.get("--stop")
        experiment = experiment or earlier.experiment_name
        if pip_packages is None:
            pip_packages = before_spec.get("pip_packages") or []
        if source_directory is None:
            earlier_code = envcode.download_environment_code(earlier)
            source_directory = earlier_code
    try:
        return _submit_training(
            workspace,
            earlier=earlier,
            env=env,
            run=run or DEFAULT_RUN,
            config=_json_text(config, "config"),
            stop=_json_text(stop, "stop"),
            source_directory=source_directory,
            pip_packages=list(pip_packages or []),
            experiment=experiment,
            head=head,
            worker=worker,
            nodes=nodes,
            max_run_duration_seconds=max_run_duration_seconds,
            environment_variables=dict(environment_variables or {}),
            cluster_coordination_timeout_seconds=cluster_coordination_timeout_seconds,
            shm_size=shm_size,
            use_gpu=use_gpu,
        )
    finally:
        if earlier_code is not None:
            shutil.rmtree(earlier_code.parent, ignore_errors=True)


def _submit_training(
    workspace: Workspace,
    *,
    earlier: Run | None,
    env: str | None,
    run: str,
    config: str,
    stop: str,
    source_directory: str | os.PathLike[str] | None,
    pip_packages: list[str],
    experiment: str | None,
    head: str | None,
    worker: str | None,
    nodes: int | None,
    max_run_duration_seconds: float | None,
    environment_variables: dict[str, str],
    cluster_coordination_timeout_seconds: float | None,
    shm_size: int | str | None,
    use_gpu: bool | None,
) -> Run:
    if not env:
        raise RunSpecError("name the environment with --env (e.g. PongNoFrameskip-v4).")
    user_code = None
    if source_directory is not None:
        user_code = envcode.check_source_directory(source_directory, reserved=[ENTRY_SCRIPT])
    check_trainer_args(run, env, config, stop, source_directory=user_code)
    if head is None and worker is None:
        head, worker = default_compute(workspace)
    if head is None:
        raise RunSpecError("--worker needs --head too.")

    if use_gpu is None:
        use_gpu = workspace.compute.get(head).gpus > 0  # an unknown target fails here, at once
    worker_configuration = None
    if worker is not None:
        count = nodes if nodes is not None else max(workspace.compute.get(worker).min_nodes, 1)
        worker_configuration = WorkerConfiguration(worker, node_count=count)

    source = workspace.state_dir / "train" / uuid.uuid4().hex[:12]
    source.mkdir(parents=True)
    try:
        copied = envcode.copy_source_directory(user_code, source) if user_code else []
        (source / ENTRY_SCRIPT).write_text(ENTRY_SOURCE)
        params: dict[str, Any] = {"--run": run, "--env": env, "--config": config, "--stop": stop}
        tags = {record.KIND: "train"}
        if user_code is not None:
            tags[envcode.ENVIRONMENT_CODE_TAG] = envcode.ENVIRONMENT_CODE
        if earlier is not None:
            params["--restore"] = _fetch_last_checkpoint(earlier, source)
            tags[RESUMED_FROM] = earlier.id
        optional: dict[str, Any] = {}
        if cluster_coordination_timeout_seconds is not None:
            optional["cluster_coordination_timeout_seconds"] = cluster_coordination_timeout_seconds
        spec = RunSpec(
            source_directory=str(source),
            entry_script=ENTRY_SCRIPT,
            script_params=params,
            compute_target=head,
            pip_packages=pip_packages,
            environment_variables=environment_variables,
            use_gpu=use_gpu,
            worker_configuration=worker_configuration,
            max_run_duration_seconds=max_run_duration_seconds,
            shm_size=shm_size,
            **optional,
        ).checked("the training")
        submitted = submit(workspace, spec, experiment=experiment, tags=tags)
    except RlfleetError:  # refused before anything was recorded: leave the workspace as it was
        shutil.rmtree(source, ignore_errors=True)
        raise
    if copied:
        envcode.log_environment_code(submitted, source, copied)
    return submitted


def load_training_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML training spec: the run spec's fields, less ``entry_script`` (the built-in
    trainer is the entry script), ``script_params`` holding ``--run``, ``--env``, ``--config``
    and ``--stop`` (config and stop as mappings or JSON text).

    Args:
        path: The YAML file; a relative ``source_directory`` in it is relative to the file.

    Returns:
        The keyword arguments of :func:`submit_training` the file gives (only those it gives).

    Raises:
        RunSpecError: the file cannot be read, is not YAML, or has an unknown field, a value of
            the wrong type, an ``entry_script`` or an unknown script parameter.
    """
    path = Path(path)
    data = read_yaml(path, what="a training spec")
    where = str(path)
    if not isinstance(data, dict):
        raise RunSpecError(f"{where} must be a mapping of run settings.")
    if "entry_script" in data:
        raise RunSpecError(
            f"{where}: entry_script is not allowed in a training spec: the built-in trainer is "
            "the entry script (run your own script with `rlfleet submit`)."
        )
    source = data.get("source_directory")
    spec = RunSpec.from_dict(
        {**data, "source_directory": source or ".", "entry_script": ENTRY_SCRIPT}, source=where
    )
    if not isinstance(spec.script_params, dict):
        raise RunSpecError(
            f"{where}: script_params must map {', '.join(TRAINER_PARAMS)} to values."
        )
    for flag, value in spec.script_params.items():
        if flag not in TRAINER_PARAMS:
            raise RunSpecError(
                f"{where}: unknown script parameter {flag!r}; the trainer takes "
                f"{', '.join(TRAINER_PARAMS)}."
            )
        if value is None or isinstance(value, bool):
            raise RunSpecError(f"{where}: script_params[{flag!r}] needs a value.")
    args = spec.script_args()
    params = dict(zip(args[::2], args[1::2], strict=True))
    given: dict[str, Any] = {
        name.lstrip("-"): params[name] for name in TRAINER_PARAMS if name in params
    }
    if source:
        given["source_directory"] = str((path.parent / Path(source).expanduser()).resolve())
    for name in (
        "pip_packages",
        "environment_variables",
        "max_run_duration_seconds",
        "cluster_coordination_timeout_seconds",
        "shm_size",
        "use_gpu",
    ):
        if name in data:
            given[name] = getattr(spec, name)
    if spec.compute_target is not None:
        given["head"] = spec.compute_target
    worker_config = spec.worker_configuration
    if worker_config is not None and worker_config.use_gpu:
        raise RunSpecError(
            f"{where}: worker_configuration.use_gpu does not apply to the built-in trainer: its "
            "actors run on CPUs (the learner, on the head, takes use_gpu)."
        )
    if worker_config is not None:
        given["worker"] = worker_config.compute_target
        given["nodes"] = worker_config.node_count
        given["pip_packages"] = spec.all_pip_packages()
    return given


def _json_text(value: JsonArg, what: str) -> str:
    if value is None:
        return "{}"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        try:
            return json.dumps(dict(value))
        except (TypeError, ValueError, RecursionError) as err:
            raise RunSpecError(f"{what} cannot be written as JSON: {err}.") from None
    raise RunSpecError(f"{what} must be JSON text or a mapping, not {type(value).__name__}.")


def _script_params(earlier: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    """The trainer arguments of an earlier run, and its whole recorded spec."""
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
    return params, spec


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


__all__ = ["check_trainer_args", "load_training_spec", "submit_training"]
