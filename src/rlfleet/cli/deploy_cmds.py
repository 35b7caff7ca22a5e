"""``rlfleet evaluate|export|deploy|play``: from a trained run to a deployed agent."""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from rlfleet.cli.common import add_json_flag, workspace
from rlfleet.cli.output import print_json
from rlfleet.errors import RlfleetError
from rlfleet.runs.run import Run

TOKEN_ENV = "RLFLEET_ENDPOINT_TOKEN"


def register(commands: argparse._SubParsersAction) -> None:
    ev = commands.add_parser("evaluate", help="play a run's policy, score it, film it, register it")
    ev.add_argument("run")
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument("--video", metavar="FILE.mp4", help="film the first episode (.mp4 or .gif)")
    ev.add_argument("--checkpoint", choices=["last", "best"], default="last")
    ev.add_argument("--sample", action="store_true", help="sample actions (default: most likely)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--model-name", help="registered model name (default: from the environment)")
    ev.add_argument("--no-register", action="store_true", help="do not register an MLflow model")
    add_json_flag(ev)
    ev.set_defaults(handler=_evaluate)

    ex = commands.add_parser("export", help="a standalone policy file (no Ray, no rlfleet)")
    ex.add_argument("run")
    ex.add_argument("--format", choices=["onnx", "torchscript"], required=True)
    ex.add_argument("-o", "--output", required=True, metavar="FILE")
    ex.add_argument("--checkpoint", choices=["last", "best"], default="last")
    ex.set_defaults(handler=_export)

    de = commands.add_parser("deploy", help="serve a run's policy over HTTP (Ray Serve)")
    de.add_argument("run")
    de.add_argument("--port", type=int, default=8000)
    de.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    de.add_argument("--replicas", type=int, default=1)
    de.add_argument("--checkpoint", choices=["last", "best"], default="last")
    de.add_argument("--token-file", help=f"require this bearer token (or set ${TOKEN_ENV})")
    de.set_defaults(handler=_deploy)

    pl = commands.add_parser("play", help="play locally, every action from an endpoint")
    pl.add_argument("--endpoint", required=True, help="e.g. http://127.0.0.1:8000")
    pl.add_argument("--env", required=True)
    code = pl.add_mutually_exclusive_group()
    code.add_argument(
        "--source-directory",
        metavar="DIR",
        help="folder with the environment's code (for an environment of your own)",
    )
    code.add_argument(
        "--run",
        metavar="RUN_ID",
        help="take the environment's code from this run (the one the endpoint serves)",
    )
    pl.add_argument("--episodes", type=int, default=3)
    pl.add_argument("--sample", action="store_true", help="ask for sampled actions")
    pl.add_argument("--seed", type=int, default=0)
    pl.add_argument("--token-file", help=f"the endpoint's bearer token (or set ${TOKEN_ENV})")
    add_json_flag(pl)
    pl.set_defaults(handler=_play)


def _token(path: str | None) -> str | None:
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError as err:
            raise RlfleetError(f"cannot read --token-file {path}: {err.strerror}.") from None
    return os.environ.get(TOKEN_ENV) or None


def _use_run_environment_code(run: Run) -> None:
    """Put the run's environment code (``rlfleet train --source-directory``) on the import path."""
    from rlfleet.deploy.envcode import download_environment_code, use_environment_code

    code = download_environment_code(run)
    if code is not None:
        atexit.register(shutil.rmtree, code.parent, ignore_errors=True)
        use_environment_code(code)


def _evaluate(args: argparse.Namespace) -> int:
    from rlfleet.deploy.evaluate import attach, evaluate
    from rlfleet.deploy.policy import Policy

    if args.episodes < 1:
        raise RlfleetError("--episodes must be at least 1.")
    run = Run.find(args.run, workspace=workspace(args))
    _use_run_environment_code(run)  # the run's own environment, if it has one
    policy = Policy.from_run(run, which=args.checkpoint)
    result = evaluate(
        policy, episodes=args.episodes, greedy=not args.sample, seed=args.seed, video=args.video
    )
    attach(result, run)
    summary = result.to_dict()
    if not args.no_register:
        from rlfleet.deploy.pyfunc import register as register_model

        version = register_model(policy, run, result, name=args.model_name)
        summary["model"] = {"name": version.name, "version": version.version}
    if args.json:
        print_json(summary)
        return 0
    print(
        f"{summary['episodes']} episodes of {result.env_id} ({result.mode}): mean {summary['mean']:.2f}, "
        f"median {summary['median']:.2f}, min {summary['min']:.2f}, max {summary['max']:.2f}"
    )
    print("scores: " + ", ".join(f"{s:g}" for s in result.scores))
    if result.video:
        print(f"video: {result.video} (also attached to run {run.id} under evaluation/)")
    if "model" in summary:
        print(
            f"registered model {summary['model']['name']!r} version {summary['model']['version']}"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from rlfleet.deploy.export import export
    from rlfleet.deploy.policy import Policy

    run = Run.find(args.run, workspace=workspace(args))
    policy = Policy.from_run(run, which=args.checkpoint)
    path = export(policy, args.output, args.format)
    meta, action = policy.metadata, policy.action
    if action.kind == "discrete":
        actions = f"{action.n} actions"
    elif action.kind == "multi_discrete":
        actions = f"MultiDiscrete actions {list(action.nvec)}"
    else:
        actions = f"Box actions of shape {action.shape} (outputs the Gaussian's mean)"
    print(
        f"wrote {path} ({args.format}): {meta.env_id}, observations {tuple(meta.obs_shape)} {meta.obs_dtype}, {actions}"
    )
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from rlfleet.deploy.deployment import Deployment, serve_until_signalled
    from rlfleet.deploy.policy import CHECKPOINTS

    ws = workspace(args)
    run = Run.find(args.run, workspace=ws)
    token = _token(args.token_file)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        print(
            f"rlfleet: warning: serving on {args.host} without a token; anyone who can reach it can use it",
            file=sys.stderr,
        )
    from rlfleet.deploy.policy import Policy

    policy = Policy.from_run(run, which=args.checkpoint)  # checks the checkpoint loads
    names = sorted(p for p in run.store.list_artifacts(run.id, CHECKPOINTS) if p.endswith(".pt"))
    name = names[-1] if args.checkpoint == "last" else f"{CHECKPOINTS}/{policy.metadata.checkpoint}"
    checkpoint = run.store.download_artifacts(
        run.id, name, tempfile.mkdtemp(prefix="rlfleet-serve-")
    )
    deployment = Deployment(ws, replicas=args.replicas, host=args.host, port=args.port)
    url = deployment.start(checkpoint, run_id=run.id, token=token)
    try:
        ready = (
            f"serving run {run.id} ({policy.metadata.env_id}) on {url}: POST /act, GET /healthz, "
            f"GET /metadata, OpenAPI at /openapi.json{' (bearer token required)' if token else ''}; Ctrl-C stops"
        )
        return serve_until_signalled(deployment, url, ready)
    except BaseException:
        deployment.stop()  # the serving cluster must not outlive this process
        raise


def _play(args: argparse.Namespace) -> int:
    from rlfleet.deploy.play import EndpointClient, play

    if args.episodes < 1:
        raise RlfleetError("--episodes must be at least 1.")
    if args.source_directory:
        from rlfleet.deploy.envcode import use_environment_code

        use_environment_code(args.source_directory)
    elif args.run:
        _use_run_environment_code(Run.find(args.run, workspace=workspace(args)))
    client = EndpointClient(args.endpoint, token=_token(args.token_file))
    result = play(client, args.env, episodes=args.episodes, seed=args.seed, sample=args.sample)
    if args.json:
        print_json(result)
    else:
        print(
            f"{result['episodes']} episodes of {result['env_id']} through {args.endpoint}: mean {result['mean']:.2f} (scores: {', '.join(f'{s:g}' for s in result['scores'])})"
        )
    return 0
