"""``rlfleet``: the command line. Each command is a thin layer over the SDK.

Errors rlfleet expects (bad input, missing targets or runs, a cluster that will not start) are
printed as one line, ``rlfleet: error: ...``, with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from rlfleet.cli import (
    cluster_cmds,
    compute_cmds,
    deploy_cmds,
    kube_cmds,
    monitor_cmds,
    runs_cmds,
    train_cmds,
    workspace_cmds,
)
from rlfleet.errors import RlfleetError

DEBUG_ENV = "RLFLEET_DEBUG"


class UsageError(RlfleetError):
    """The command line itself is wrong."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other rlfleet error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see `{self.prog} --help`")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> object:
        # Python 3.11's argparse drops a "--" even from ``--stop=--``, handing the option an
        # empty list (read as "not given"); the user typed a value, so it is the value.
        if action.nargs is None and arg_strings == ["--"]:
            return self._get_value(action, "--")
        return super()._get_values(action, arg_strings)


def build_parser() -> Parser:
    parser = Parser(
        prog="rlfleet",
        description="Train and deploy RL agents on a Ray cluster, with every run tracked.",
    )
    parser.add_argument(
        "-w",
        "--workspace",
        help="workspace folder (default: $RLFLEET_WORKSPACE or the first folder upwards "
        "from here that holds rlfleet.yaml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what rlfleet does")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    workspace_cmds.register(commands)
    compute_cmds.register(commands)
    cluster_cmds.register(commands)
    runs_cmds.register(commands)
    train_cmds.register(commands)
    monitor_cmds.register(commands)
    deploy_cmds.register(commands)
    kube_cmds.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
        return int(args.handler(args) or 0)
    except RlfleetError as err:
        print(f"rlfleet: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("rlfleet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`rlfleet runs list | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:
        if os.environ.get(DEBUG_ENV):
            raise
        message = " ".join(str(err).split())[:300]
        print(
            f"rlfleet: internal error: {type(err).__name__}: {message} "
            f"(set {DEBUG_ENV}=1 to see where)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
