"""``rlfleet train``: the built-in IMPALA trainer as a tracked run."""

from __future__ import annotations

import argparse

from rlfleet.cli.common import add_json_flag, workspace
from rlfleet.cli.output import print_json
from rlfleet.runs.status import RunStatus


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train an agent with the built-in IMPALA trainer (the seed's arguments)",
        description="Submit rlfleet's IMPALA trainer as a run: actors on the worker nodes, the "
        "learner on the head. Without --head/--worker, the workspace's 'head' and 'workers' "
        "targets are used (created, local, if the workspace has none).",
    )
    train.add_argument("--run", default="IMPALA", help="the algorithm: IMPALA")
    train.add_argument("--env", help="e.g. PongNoFrameskip-v4, ALE/Breakout-v5, CartPole-v1")
    train.add_argument("--config", help="trainer config, JSON: '{\"num_workers\": 2}'")
    train.add_argument("--stop", help="stop criteria, JSON: '{\"episode_reward_mean\": 18}'")
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


def _train(args: argparse.Namespace) -> int:
    from rlfleet.train import submit_training

    run = submit_training(
        workspace(args),
        env=args.env,
        run=args.run,
        config=args.config,
        stop=args.stop,
        experiment=args.experiment,
        head=args.head,
        worker=args.worker,
        nodes=args.nodes,
        resume=args.resume,
        max_run_duration_seconds=args.max_run_duration,
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
