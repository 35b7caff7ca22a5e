"""``rlfleet submit`` and ``rlfleet runs list|show|logs|metrics|cancel|wait``."""

from __future__ import annotations

import argparse
import sys

from rlfleet.cli.common import add_json_flag, workspace
from rlfleet.cli.output import print_fields, print_json, print_table
from rlfleet.errors import RlfleetError
from rlfleet.runs import record
from rlfleet.runs.reconcile import reconcile
from rlfleet.runs.run import Run
from rlfleet.runs.spec import RunSpec
from rlfleet.runs.status import RunStatus
from rlfleet.runs.submit import submit


def register(commands: argparse._SubParsersAction) -> None:
    sub_cmd = commands.add_parser("submit", help="submit a run spec (YAML) as a run")
    sub_cmd.add_argument("spec", metavar="RUN.yaml", help="run specification file")
    sub_cmd.add_argument("--experiment", help="experiment name (default: the workspace's)")
    sub_cmd.add_argument("--name", help="a name for the run")
    sub_cmd.add_argument("--wait", action="store_true", help="wait for the end, streaming output")
    add_json_flag(sub_cmd)
    sub_cmd.set_defaults(handler=_submit)

    runs = commands.add_parser("runs", help="list, inspect and control runs")
    sub = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    sub.required = True

    listing = sub.add_parser("list", help="list runs, newest first")
    listing.add_argument("--experiment", help="only this experiment's runs")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)

    show = sub.add_parser("show", help="status, metrics, children and error of a run")
    show.add_argument("run", help="run id (or a unique prefix)")
    add_json_flag(show)
    show.set_defaults(handler=_show)

    logs = sub.add_parser("logs", help="print a run's logs")
    logs.add_argument("run")
    logs.add_argument(
        "--role",
        choices=record.ROLES,
        default="head",
        help="head: the entry script's output; worker: each worker node's log",
    )
    logs.add_argument(
        "--follow", "-f", action="store_true", help="keep printing until the run ends"
    )
    logs.set_defaults(handler=_logs)

    metrics = sub.add_parser("metrics", help="a run's metrics (or one metric's points)")
    metrics.add_argument("run")
    metrics.add_argument("name", nargs="?", help="metric name: print its points with steps")
    add_json_flag(metrics)
    metrics.set_defaults(handler=_metrics)

    cancel = sub.add_parser("cancel", help="cancel a run and stop what it started")
    cancel.add_argument("run")
    cancel.add_argument("--reason", default="canceled by user")
    cancel.add_argument("--no-wait", action="store_true", help="return without waiting for the end")
    cancel.set_defaults(handler=_cancel)

    watch = sub.add_parser("watch", help="a live view of a run until it ends")
    watch.add_argument("run")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between redraws")
    watch.set_defaults(handler=_watch)

    plot = sub.add_parser("plot", help="learning curves of runs on one chart (PNG)")
    plot.add_argument("runs", nargs="+", metavar="RUN")
    plot.add_argument("-o", "--output", required=True, metavar="FILE.png")
    plot.add_argument("--metric", default="episode_reward_mean")
    plot.add_argument("--threshold", type=float, help="draw this stop threshold")
    plot.set_defaults(handler=_plot)

    wait = sub.add_parser("wait", help="wait for a run to end (exit 0 if COMPLETED)")
    wait.add_argument("run")
    wait.add_argument("--timeout", type=float, help="give up after this many seconds")
    wait.add_argument("--show-output", action="store_true", help="stream the entry script's output")
    wait.set_defaults(handler=_wait)


def _find(args: argparse.Namespace) -> Run:
    return Run.find(args.run, workspace=workspace(args))


def _exit_code(status: RunStatus) -> int:
    return 0 if status is RunStatus.COMPLETED else 1


def _submit(args: argparse.Namespace) -> int:
    ws = workspace(args)
    spec = RunSpec.from_yaml(args.spec)
    run = submit(ws, spec, experiment=args.experiment, name=args.name)
    if not args.json:
        print(f"submitted run {run.id} to experiment {run.experiment_name!r}")
    if args.wait:
        if args.json:
            status = run.wait_for_completion()
        else:
            status = follow(run)
            _print_end(run)
    else:
        status = RunStatus.QUEUED
        if not args.json:
            print(f"follow it with `rlfleet runs wait {run.id} --show-output`")
    if args.json:
        print_json(run.to_dict())
    return _exit_code(status) if args.wait else 0


def _list(args: argparse.Namespace) -> int:
    ws = workspace(args)
    store = ws.tracking
    if args.experiment:
        experiments = [store.experiment(args.experiment, create=False)]
    else:
        experiments = store.experiments()
    names = {e.experiment_id: e.name for e in experiments}
    found = store.search_runs(list(names), max_results=args.limit * 3) if names else []
    top = [r for r in found if "mlflow.parentRunId" not in r.data.tags][: args.limit]
    rows = [
        {
            "id": r.info.run_id,
            "name": r.info.run_name,
            "experiment": names.get(r.info.experiment_id),
            "status": reconcile(store, r, ws).value,
            "created": _time(r.info.start_time),
            "episode_reward_mean": r.data.metrics.get("episode_reward_mean"),
        }
        for r in top
    ]
    if args.json:
        print_json(rows)
    else:
        print_table(
            ["id", "experiment", "status", "created", "episode_reward_mean"],
            [
                (r["id"], r["experiment"], r["status"], r["created"], r["episode_reward_mean"])
                for r in rows
            ],
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    summary = _find(args).to_dict()
    if args.json:
        print_json(summary)
        return 0
    compute = summary["compute"]
    where = compute["head"] or "-"
    if compute["worker"]:
        where += f" + {compute['node_count']} x {compute['worker']}"
    print_fields(
        [
            ("id", summary["id"]),
            ("name", summary["name"]),
            ("experiment", summary["experiment"]),
            ("status", summary["status"]),
            ("reason", summary["status_reason"]),
            ("created", summary["created"]),
            (
                "duration",
                f"{summary['duration_s']} s" if summary["duration_s"] is not None else None,
            ),
            ("compute", where),
        ]
    )
    if summary["metrics"]:
        print("\nmetrics (latest):")
        print_table(["name", "value"], list(summary["metrics"].items()))
    if summary["children"]:
        print("\nchildren:")
        print_table(
            ["role", "id", "status", "logs"],
            [(c["role"], c["id"], c["status"], ", ".join(c["logs"])) for c in summary["children"]],
        )
    if summary["error"]:
        print("\nerror:")
        print(summary["error"])
    return 0


def _logs(args: argparse.Namespace) -> int:
    run = _find(args)
    if args.role == "head":
        if args.follow:
            run.wait_for_completion(show_output=True)
        else:
            sys.stdout.write(run.driver_log())
        return 0
    child = run.get_child("worker")
    if child is None:
        raise RlfleetError(f"run {run.id} has no worker nodes (or has not started them yet).")
    for name, text in sorted(child.get_logs().items()):
        print(f"===== {name} =====")
        sys.stdout.write(text)
    return 0


def _metrics(args: argparse.Namespace) -> int:
    run = _find(args)
    if args.name is None:
        latest = run.store.get_run(run.id).data.metrics
        if args.json:
            print_json({"run_id": run.id, "metrics": latest})
        else:
            print_table(["name", "latest"], sorted(latest.items()))
        return 0
    points = run.get_metric_history(args.name)
    if not points:
        known = ", ".join(sorted(run.store.get_run(run.id).data.metrics)) or "none yet"
        raise RlfleetError(f"run {run.id} has no metric {args.name!r} (it has: {known}).")
    if args.json:
        print_json(
            {
                "run_id": run.id,
                "name": args.name,
                "points": [
                    {"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in points
                ],
            }
        )
    else:
        print_table(
            ["step", "value", "time"], [(p.step, p.value, _time(p.timestamp)) for p in points]
        )
    return 0


def _cancel(args: argparse.Namespace) -> int:
    run = _find(args)
    before = run.status
    if before.is_terminal():
        print(f"run {run.id} already ended: {before.value}")
        return 0
    status = run.cancel(args.reason, wait=not args.no_wait)
    print(f"run {run.id}: {status.value}")
    return 0


def _watch(args: argparse.Namespace) -> int:
    from rlfleet.monitor.watch import watch

    return _exit_code(watch(_find(args), out=sys.stdout, interval_s=args.interval))


def _plot(args: argparse.Namespace) -> int:
    from rlfleet.monitor.plots import plot_runs

    ws = workspace(args)
    runs = [Run.find(ref, workspace=ws) for ref in args.runs]
    path = plot_runs(runs, args.output, metric=args.metric, threshold=args.threshold)
    print(f"wrote {path}")
    return 0


def follow(run: Run) -> RunStatus:
    """What ``--wait`` shows: the live view on a terminal, else the entry script's output."""
    if sys.stdout.isatty():
        from rlfleet.monitor.watch import watch

        return watch(run, out=sys.stdout)
    return run.wait_for_completion(show_output=True, out=sys.stdout)


def _wait(args: argparse.Namespace) -> int:
    run = _find(args)
    status = run.wait_for_completion(show_output=args.show_output, timeout_s=args.timeout)
    _print_end(run)
    return _exit_code(status)


def _print_end(run: Run) -> None:
    summary = run.to_dict()
    line = f"run {run.id} {summary['status']}"
    if summary["status_reason"]:
        line += f": {summary['status_reason']}"
    print(line)
    if summary["status"] == RunStatus.FAILED.value and summary["error"]:
        print(summary["error"], file=sys.stderr)


def _time(ms: int | None) -> str | None:
    if not ms:
        return None
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
