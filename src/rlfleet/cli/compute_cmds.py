"""``rlfleet compute create|list|show|delete``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlfleet.cli.common import add_json_flag, workspace
from rlfleet.cli.output import print_fields, print_json, print_table
from rlfleet.compute.auth import token_file_for
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
        help="local: Ray nodes started on this machine; ray: an existing cluster; ssh: your own "
        "hosts, Ray started there over SSH",
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
        "--max-nodes",
        type=int,
        help="most worker nodes a run may ask for (default 4; ssh: the number of --hosts)",
    )
    create.add_argument("--address", help="GCS address HOST:PORT of a 'ray' cluster")
    create.add_argument("--head-host", help="ssh: the host of the head node")
    create.add_argument(
        "--hosts", help="ssh: the hosts of worker nodes, comma-separated (one node per host)"
    )
    create.add_argument("--ssh-user", help="ssh: the user to log in as on every host")
    create.add_argument("--ssh-key", metavar="PATH", help="ssh: that user's private key")
    create.add_argument(
        "--idle-timeout",
        type=float,
        default=5.0,
        metavar="MINUTES",
        help="ssh: worker nodes idle this long go away, down to --min-nodes (default 5)",
    )
    create.add_argument(
        "--dashboard-address",
        metavar="HOST:PORT",
        help="a 'ray' cluster's dashboard, where its Jobs API is (default: the --address host, "
        "port 8265)",
    )
    create.add_argument(
        "--token-file",
        metavar="PATH",
        help="a 'ray' cluster's Ray auth token (default: your Ray auth settings: RAY_AUTH_TOKEN, "
        "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)",
    )
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
    ws = workspace(args)
    kind = ComputeKind(args.kind)
    if args.token_file and kind is not ComputeKind.RAY:
        raise ComputeTargetError(
            "--token-file is for targets of kind 'ray'; local targets use the workspace's own "
            "token."
        )
    token_file = None
    hosts = tuple(h.strip() for h in (args.hosts or "").split(",") if h.strip())
    max_nodes = args.max_nodes
    if max_nodes is None:
        max_nodes = len(hosts) if kind is ComputeKind.SSH and hosts else 4
    if kind is ComputeKind.SSH and args.ssh_key:
        key = Path(args.ssh_key).expanduser()
        if not key.is_file():
            raise ComputeTargetError(f"--ssh-key {args.ssh_key} is not a file.")
        args.ssh_key = str(key.resolve())
    if kind is ComputeKind.RAY:
        ComputeTarget(name=args.name, kind=kind, address=args.address)  # check before reading
        ws.compute.check_free(args.name)
        token_file = token_file_for(ws, args.name, args.token_file)
    target = ComputeTarget(
        name=args.name,
        kind=kind,
        cpus=args.cpus,
        gpus=args.gpus,
        memory_gb=args.memory,
        min_nodes=args.min_nodes,
        max_nodes=max_nodes,
        address=args.address,
        dashboard_address=args.dashboard_address,
        head_host=args.head_host,
        hosts=hosts,
        ssh_user=args.ssh_user,
        ssh_key=args.ssh_key,
        idle_timeout_minutes=args.idle_timeout,
        token_file=token_file,
    )
    ws.compute.create(target)
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
            ("token file", target.token_file),
            ("head host", target.head_host),
            ("worker hosts", ", ".join(target.hosts) or None),
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
    target = ws.compute.get(args.name)
    status = target_status(ws, target) if target.kind is ComputeKind.LOCAL else None
    if status is not None and status.up:
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
    if target.head_host:
        shape += f" @ {target.head_host} + {len(target.hosts)} host(s)"
    return shape


def _nodes(status) -> str:
    if status.up is None:
        return "unreachable" if status.error else "-"
    desired = "-" if status.desired is None else status.desired
    return f"{status.up}/{desired}"
