"""``rlfleet train``: the built-in trainer as a tracked run."""

from __future__ import annotations

import argparse
from typing import Any

from rlfleet.cli.common import add_json_flag, workspace
from rlfleet.cli.output import print_json
from rlfleet.runs.status import RunStatus


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train an agent with the built-in trainer (the seed's arguments)",
        description="Submit rlfleet's trainer as a run: actors on the worker nodes, the "
        "learner on the head. Without --head/--worker, the workspace's 'head' and 'workers' "
        "targets are used (created, local, if the workspace has none). Your own environment: "
        "--source-directory DIR --env module:Class (or module:Id-v0, an id the module "
        "registers); DIR is shipped to every node and saved with the run.",
    )
    train.add_argument(
        "--spec",
        metavar="TRAIN.yaml",
        help="the training as a YAML file (run spec field names; flags given too override it)",
    )
    train.add_argument("--run", help="the algorithm: IMPALA (default), APPO or PPO")
    train.add_argument(
        "--env",
        help="e.g. PongNoFrameskip-v4, CartPole-v1, or from --source-directory: "
        "my_pkg.envs:Warehouse-v0, my_pkg.envs:WarehouseEnv",
    )
    train.add_argument(
        "--config",
        help='trainer config, JSON: \'{"num_workers": 2, "env_config": {...}}\' (env_config: '
        "your environment's keyword arguments)",
    )
    train.add_argument("--stop", help="stop criteria, JSON: '{\"episode_reward_mean\": 18}'")
    train.add_argument(
        "--source-directory",
        metavar="DIR",
        help="folder with your environment's code, shipped to every node and saved with the run",
    )
    train.add_argument(
        "--pip-package",
        action="append",
        metavar="PKG",
        dest="pip_packages",
        help="a package to install for the run on every node (repeatable)",
    )
    train.add_argument("--experiment", help="experiment name (default: the workspace's)")
    train.add_argument("--head", help="compute target of the head node (the learner)")
    train.add_argument("--worker", help="compute target of the worker nodes (the actors)")
    train.add_argument(
        "--nodes", type=int, help="worker nodes (default: the target's min, at least 1)"
    )
    train.add_argument(
        "--resume", metavar="RUN_ID", help="continue that run from its last checkpoint"
    )
    train.add_argument(
        "--max-run-duration", type=float, metavar="SECONDS", help="cancel after this long"
    )
    train.add_argument("--wait", action="store_true", help="follow the run until it ends")
    add_json_flag(train)
    train.set_defaults(handler=_train)


def training_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """submit_training's keyword arguments: the ``--spec`` file's, overridden by the flags given."""
    from rlfleet.train import load_training_spec

    given = load_training_spec(args.spec) if args.spec else {}
    flags = {
        "env": args.env,
        "run": args.run,
        "config": args.config,
        "stop": args.stop,
        "source_directory": args.source_directory,
        "pip_packages": args.pip_packages,
        "head": args.head,
        "worker": args.worker,
        "nodes": args.nodes,
        "max_run_duration_seconds": args.max_run_duration,
    }
    given.update({name: value for name, value in flags.items() if value is not None})
    given.setdefault("env", None)
    return given


def _train(args: argparse.Namespace) -> int:
    from rlfleet.train import submit_training

    run = submit_training(
        workspace(args),
        **training_arguments(args),
        experiment=args.experiment,
        resume=args.resume,
    )
    if not args.json:
        print(f"submitted training run {run.id} to experiment {run.experiment_name!r}")
    status = RunStatus.QUEUED
    if args.wait:
        from rlfleet.cli.runs_cmds import follow

        status = run.wait_for_completion() if args.json else follow(run)
        if not args.json:
            summary = run.to_dict()
            print(
                f"run {run.id} {status.value}"
                + (f": {summary['status_reason']}" if summary["status_reason"] else "")
            )
    elif not args.json:
        print(f"follow it with `rlfleet runs wait {run.id} --show-output`")
    if args.json:
        print_json(run.to_dict())
    return (0 if status is RunStatus.COMPLETED else 1) if args.wait else 0
