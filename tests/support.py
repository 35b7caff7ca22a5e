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
