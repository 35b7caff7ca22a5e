"""``rlfleet init``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlfleet.errors import WorkspaceConfigError
from rlfleet.tracking.store import redact_uri
from rlfleet.workspace import CONFIG_FILE_NAME, Workspace


def register(commands: argparse._SubParsersAction) -> None:
    init = commands.add_parser("init", help="make a folder an rlfleet workspace")
    init.add_argument("directory", nargs="?", default=".", help="the folder (default: here)")
    init.add_argument("--name", help="workspace name (default: the folder's name)")
    init.add_argument(
        "--tracking-uri",
        help="an MLflow server (http://host:5000) or database (postgresql://...) instead of "
        "the embedded SQLite store",
    )
    init.add_argument("--tracking-username", help="user of the tracking server, if it asks")
    init.add_argument(
        "--tracking-password-file",
        metavar="FILE",
        help="file with that user's password (copied into .rlfleet/, readable by you only)",
    )
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    existed = (Path(args.directory) / CONFIG_FILE_NAME).exists()
    password = None
    if args.tracking_password_file:
        try:
            password = Path(args.tracking_password_file).read_text().strip()
        except OSError as err:
            raise WorkspaceConfigError(
                f"cannot read --tracking-password-file {args.tracking_password_file}: "
                f"{err.strerror or err}."
            ) from None
    ws = Workspace.init(
        args.directory,
        name=args.name,
        tracking_uri=args.tracking_uri,
        tracking_username=args.tracking_username,
        tracking_password=password,
    )
    ws.tracking.experiment(ws.config.default_experiment)  # opens (creates) the store now
    verb = "already a workspace" if existed else "initialised workspace"
    print(f"{verb} {ws.name!r} in {ws.root}")
    print(f"tracking store: {redact_uri(ws.tracking_uri)}")
    return 0
