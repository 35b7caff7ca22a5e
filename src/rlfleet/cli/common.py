"""Helpers shared by the CLI's command modules."""

from __future__ import annotations

import argparse

from rlfleet.workspace import Workspace


def workspace(args: argparse.Namespace) -> Workspace:
    return Workspace.from_config(args.workspace)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for programs")
