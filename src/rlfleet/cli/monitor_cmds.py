"""``rlfleet ui``, ``rlfleet server`` and ``rlfleet tensorboard``: servers on 127.0.0.1 unless
asked otherwise."""

from __future__ import annotations

import argparse
import sys
import threading

from rlfleet.cli.common import workspace
from rlfleet.runs.run import Run

REFRESH_S = 15.0


def register(commands: argparse._SubParsersAction) -> None:
    ui = commands.add_parser("ui", help="the MLflow UI over this workspace's store")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    ui.set_defaults(handler=_ui)

    server = commands.add_parser(
        "server",
        help="serve this workspace's store to other hosts (MLflow's server, with a password)",
    )
    server.add_argument("--port", type=int, default=5000)
    server.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind: an address of this host that the clusters reach (default "
        "127.0.0.1, this host only)",
    )
    server.set_defaults(handler=_server)

    board = commands.add_parser("tensorboard", help="TensorBoard over runs' metrics")
    board.add_argument("runs", nargs="+", metavar="RUN")
    board.add_argument("--port", type=int, default=6006)
    board.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    board.set_defaults(handler=_tensorboard)


def _ui(args: argparse.Namespace) -> int:
    from rlfleet.monitor.ui import RUNS_LIST, serve_ui

    ws = workspace(args)
    # MLflow's model-training view (not its GenAI home) of the workspace's default experiment
    experiment = ws.tracking.experiment(ws.config.default_experiment).experiment_id
    ws.tracking.share_runs_view()  # the reward as a column of every experiment's run list
    url = f"http://{args.host}:{args.port}/#/experiments/{experiment}/runs?{RUNS_LIST}"
    print(f"MLflow UI of workspace {ws.name!r}: {url} (Ctrl-C stops)")
    return serve_ui(ws, host=args.host, port=args.port)


def _server(args: argparse.Namespace) -> int:
    from rlfleet.tracking.server import ADMIN_USER, serve, server_files

    ws = workspace(args)
    password = server_files(ws).password
    print(
        f"tracking server of workspace {ws.name!r} on http://{args.host}:{args.port} "
        f"(user {ADMIN_USER!r}, password in {password}; Ctrl-C stops). Clients: rlfleet init "
        f"--tracking-uri http://{args.host}:{args.port} --tracking-username {ADMIN_USER} "
        "--tracking-password-file FILE"
    )
    return serve(ws, host=args.host, port=args.port)


def _tensorboard(args: argparse.Namespace) -> int:
    from rlfleet.monitor.foreground import run_in_foreground
    from rlfleet.monitor.tensorboard import write_events

    ws = workspace(args)
    runs = [Run.find(ref, workspace=ws) for ref in args.runs]
    logdir = ws.state_dir / "tensorboard"
    for run in runs:
        write_events(run, logdir / run.id)
    stop = threading.Event()

    def refresh() -> None:  # live runs keep logging: rewrite their event files now and then
        while not stop.wait(REFRESH_S):
            for run in runs:
                if not run.status.is_terminal():
                    write_events(run, logdir / run.id)

    threading.Thread(target=refresh, daemon=True).start()
    print(f"TensorBoard for {len(runs)} run(s) on http://{args.host}:{args.port} (Ctrl-C stops)")
    command = [
        sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
        "--host", args.host, "--port", str(args.port),
    ]  # fmt: skip
    try:
        return run_in_foreground(command)
    finally:
        stop.set()
