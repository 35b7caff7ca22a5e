"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from rlfleet import Workspace

SCRIPTS = Path(__file__).parent / "runs" / "scripts"
ENDPOINT_TOKEN = "s3cret-token-for-tests"
"""The bearer token of the policy endpoints the deploy tests start."""


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> CliResult:
    """Run ``rlfleet ARGS`` in a fresh process, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "rlfleet.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "RLFLEET_WORKSPACE"},
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def cli_in_process(*args: str, workspace: Path | None = None) -> CliResult:
    """Run ``rlfleet ARGS`` in this process (``main()``, stdout and stderr captured): the same
    code path as :func:`run_cli` without the second or two a fresh Python takes to start."""
    import contextlib
    import io

    from rlfleet.cli.main import main

    argv = [*(["--workspace", str(workspace)] if workspace else []), *args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # --help, --version
            code = exit_.code if isinstance(exit_.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue())


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_addresses(port: int) -> list[str]:
    """The local addresses that sockets listen on at ``port`` (any process, IPv4 and IPv6)."""
    return sorted(
        {
            conn.laddr.ip
            for conn in psutil.net_connections("inet")
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
        }
    )


def processes_with(text: str) -> list[psutil.Process]:
    """Live processes whose command line mentions ``text``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if text in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def still_alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` that are still running (zombies count as gone)."""
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.Error:
            continue
    return alive


def write_spec(path: Path, **fields: object) -> Path:
    """A YAML run spec running one of tests/runs/scripts on target 'head'."""
    import yaml

    spec = {"source_directory": str(SCRIPTS), "compute_target": "head", **fields}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def workspace_state(workspace: Workspace) -> dict[str, bytes]:
    """The workspace's config and compute targets, to check that a failing command kept them."""
    files = [workspace.config_path, *sorted((workspace.state_dir / "compute").glob("*"))]
    return {str(p): p.read_bytes() for p in files}
