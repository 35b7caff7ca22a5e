"""``rlfleet compute create|list|show|delete``."""

from __future__ import annotations

import argparse

from rlfleet.cli.common import add_json_flag, workspace
from rlfleet.cli.output import print_fields, print_json, print_table
from rlfleet.compute.status import target_status
from rlfleet.compute.target import ComputeKind, ComputeTarget
from rlfleet.errors import ComputeTargetError


def register(commands: argparse._SubParsersAction) -> None:
    compute = commands.add_parser("compute", help="define the node shapes runs use")
    sub = compute.add_subparsers(dest="compute_command", metavar="ACTION")
    sub.required = True

    create = sub.add_parser("create", help="define a compute target")
    create.add_argument("name")
    create.add_argument(
        "--kind",
        choices=[k.value for k in ComputeKind],
        default="local",
        help="local: Ray nodes started on this machine; ray: an existing cluster",
    )
    create.add_argument("--cpus", type=int, default=1, help="CPUs per node (default 1)")
    create.add_argument("--gpus", type=int, default=0, help="GPUs per node (default 0)")
    create.add_argument("--memory", type=float, metavar="GB", help="memory per node, GiB")
    create.add_argument(
        "--min-nodes",
        type=int,
        default=0,
        help="worker nodes `rlfleet cluster up` starts by default (default 0)",
    )
    create.add_argument(
        "--max-nodes", type=int, default=4, help="most nodes a run may ask for (default 4)"
    )
    create.add_argument("--address", help="GCS address HOST:PORT of a 'ray' cluster")
    add_json_flag(create)
    create.set_defaults(handler=_create)

    listing = sub.add_parser("list", help="list compute targets")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)

    show = sub.add_parser("show", help="show a target and its nodes (desired/up)")
    show.add_argument("name")
    add_json_flag(show)
    show.set_defaults(handler=_show)

    delete = sub.add_parser("delete", help="delete a compute target")
    delete.add_argument("name")
    delete.set_defaults(handler=_delete)


def _create(args: argparse.Namespace) -> int:
    target = ComputeTarget(
        name=args.name,
        kind=ComputeKind(args.kind),
        cpus=args.cpus,
        gpus=args.gpus,
        memory_gb=args.memory,
        min_nodes=args.min_nodes,
        max_nodes=args.max_nodes,
        address=args.address,
    )
    workspace(args).compute.create(target)
    if args.json:
        print_json(target.to_dict())
    else:
        print(f"created compute target {target.name!r} ({_shape(target)})")
    return 0


def _list(args: argparse.Namespace) -> int:
    ws = workspace(args)
    statuses = [target_status(ws, t) for t in ws.compute.list()]
    if args.json:
        print_json([s.to_dict() for s in statuses])
        return 0
    rows = [
        (s.target.name, s.target.kind.value, _shape(s.target), s.target.max_nodes, _nodes(s))
        for s in statuses
    ]
    print_table(["name", "kind", "node shape", "max nodes", "nodes up/desired"], rows)
    return 0


def _show(args: argparse.Namespace) -> int:
    ws = workspace(args)
    status = target_status(ws, ws.compute.get(args.name))
    if args.json:
        print_json(status.to_dict())
        return 0
    target = status.target
    print_fields(
        [
            ("name", target.name),
            ("kind", target.kind.value),
            ("node shape", _shape(target)),
            ("min/max nodes", f"{target.min_nodes}/{target.max_nodes}"),
            ("address", target.address),
            ("nodes desired", status.desired),
            ("nodes up", status.up),
        ]
    )
    if status.error:
        print(f"note: {status.error}")
    if status.nodes:
        print()
        print_table(
            ["node", "role", "cluster", "owner", "alive"],
            [
                (n["name"], n["role"], n.get("cluster"), n.get("owner"), n["alive"])
                for n in status.nodes
            ],
        )
    return 0


def _delete(args: argparse.Namespace) -> int:
    ws = workspace(args)
    status = target_status(ws, ws.compute.get(args.name))
    if status.target.kind is ComputeKind.LOCAL and status.up:
        raise ComputeTargetError(
            f"compute target {args.name!r} has {status.up} node(s) up; stop them first "
            "(`rlfleet cluster down`, or wait for or cancel the runs using them)."
        )
    ws.compute.delete(args.name)
    print(f"deleted compute target {args.name!r}")
    return 0


def _shape(target: ComputeTarget) -> str:
    shape = f"{target.cpus} CPU"
    if target.gpus:
        shape += f", {target.gpus} GPU"
    if target.memory_gb:
        shape += f", {target.memory_gb:g} GiB"
    if target.address:
        shape += f" @ {target.address}"
    return shape


def _nodes(status) -> str:
    if status.up is None:
        return "unreachable" if status.error else "-"
    desired = "-" if status.desired is None else status.desired
    return f"{status.up}/{desired}"
