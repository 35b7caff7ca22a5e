"""``rlfleet cluster up|down|list``: warm local clusters that runs start on in seconds."""

from __future__ import annotations

import argparse

from rlfleet.cli.common import add_json_flag, workspace
from rlfleet.cli.output import print_json, print_table
from rlfleet.compute.cluster import LocalCluster
from rlfleet.compute.target import ComputeKind
from rlfleet.compute.warm import cluster_down, cluster_up


def register(commands: argparse._SubParsersAction) -> None:
    cluster = commands.add_parser("cluster", help="keep local nodes warm between runs")
    sub = cluster.add_subparsers(dest="cluster_command", metavar="ACTION")
    sub.required = True

    up = sub.add_parser("up", help="start a warm cluster (head + worker nodes)")
    up.add_argument("head", help="compute target of the head node")
    up.add_argument("--worker", help="compute target of the worker nodes")
    up.add_argument(
        "--nodes", type=int, help="worker nodes (default: the target's --min-nodes, at least 1)"
    )
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the nodes")
    add_json_flag(up)
    up.set_defaults(handler=_up)

    down = sub.add_parser("down", help="stop a warm cluster")
    down.add_argument("head", nargs="?", help="its head target (default: every warm cluster)")
    down.set_defaults(handler=_down)

    listing = sub.add_parser("list", help="list the local clusters and their nodes")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)


def _up(args: argparse.Namespace) -> int:
    ws = workspace(args)
    target = ws.compute.get(args.head)
    if target.kind is ComputeKind.SSH:
        from rlfleet.compute import launcher

        if not args.json:
            print(f"starting Ray on {target.head_host} (Ray's cluster launcher, over SSH) ...")
        started = launcher.cluster_up(ws, target, timeout_s=max(args.timeout, 60.0))
        state = "is up" if started else "was up already"
        url = launcher.as_ray_target(ws, target).dashboard_url
        if args.json:
            print_json({"target": target.name, "started": started, "dashboard": url})
        else:
            print(
                f"cluster of {target.name!r} {state} (head {target.head_host}, dashboard {url}); "
                f"its autoscaler keeps {target.min_nodes} to {target.max_nodes} worker node(s)"
            )
        return 0
    cluster = cluster_up(
        ws, args.head, worker=args.worker, nodes=args.nodes, timeout_s=args.timeout
    )
    if args.json:
        print_json(_describe(cluster))
    else:
        names = ", ".join(n.name for n in cluster.nodes)
        print(
            f"warm cluster {cluster.cluster_id} is up: {names} (dashboard {cluster.dashboard_url})"
        )
    return 0


def _down(args: argparse.Namespace) -> int:
    ws = workspace(args)
    if args.head and ws.compute.get(args.head).kind is ComputeKind.SSH:
        from rlfleet.compute import launcher

        if launcher.cluster_down(ws, ws.compute.get(args.head)):
            print(f"stopped Ray on the hosts of {args.head!r}")
        else:
            print(f"the cluster of {args.head!r} was not up")
        return 0
    stopped = cluster_down(ws, args.head)
    for cluster in stopped:
        print(f"stopped cluster {cluster.cluster_id} (head target {cluster.head_target!r})")
    if not stopped:
        print("no warm cluster was up")
    return 0


def _list(args: argparse.Namespace) -> int:
    clusters = LocalCluster.prune(workspace(args))
    if args.json:
        print_json([_describe(c) for c in clusters])
        return 0
    rows = []
    for cluster in clusters:
        alive = sum(n.alive() for n in cluster.nodes)
        rows.append(
            (
                cluster.cluster_id,
                cluster.owner,
                cluster.head_target,
                f"{alive}/{len(cluster.nodes)}",
                cluster.dashboard_url,
            )
        )
    print_table(["cluster", "owner", "head target", "nodes up", "dashboard"], rows)
    return 0


def _describe(cluster: LocalCluster) -> dict:
    return {
        "cluster_id": cluster.cluster_id,
        "owner": cluster.owner,
        "head_target": cluster.head_target,
        "gcs_address": cluster.gcs_address,
        "dashboard_url": cluster.dashboard_url,
        "nodes": [
            {"name": n.name, "role": n.role, "target": n.target, "alive": n.alive()}
            for n in cluster.nodes
        ],
    }
