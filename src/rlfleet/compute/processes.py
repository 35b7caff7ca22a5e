"""Process groups of the local Ray nodes rlfleet starts.

Each node is one ``ray start --block`` command started in a session of its own, so the node's
processes (GCS, raylet, dashboard, agents, workers) all share that session id. Stopping a node
means ending every process of its session: nothing of it is left behind, and no other Ray
cluster on the machine is touched (``ray stop`` would stop them all).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterable

import psutil


def session_processes(session_ids: Iterable[int]) -> list[psutil.Process]:
    """Live (non-zombie) processes whose session id is one of ``session_ids``."""
    wanted = set(session_ids)
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if os.getsid(proc.pid) in wanted:
                found.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def stop_sessions(session_ids: Iterable[int], *, grace_s: float = 1.0, wait_s: float = 10.0) -> int:
    """SIGTERM every process of the sessions, SIGKILL what is left after ``grace_s``, and wait
    (up to ``wait_s`` more) until none is left. Returns how many processes remained."""
    sessions = list(session_ids)
    procs = session_processes(sessions)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _gone, alive = psutil.wait_procs(procs, timeout=grace_s)
    deadline = time.monotonic() + wait_s
    while True:
        alive = session_processes(sessions)
        if not alive or time.monotonic() > deadline:
            return len(alive)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=0.5)


def session_alive(session_id: int) -> bool:
    """Whether the session leader (the ``ray start`` command) still runs."""
    try:
        proc = psutil.Process(session_id)
        return proc.status() != psutil.STATUS_ZOMBIE and os.getsid(session_id) == session_id
    except (psutil.Error, ProcessLookupError):
        return False


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on every interface (Ray binds some on all of them)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False
