"""A server command run in the foreground until Ctrl-C or SIGTERM, leaving nothing behind.

``mlflow server`` starts uvicorn (and, in some setups, job consumers) as children of its own;
ending only the process rlfleet started would orphan them. The server gets a session of its
own, and stopping it ends every process of that session.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence
from types import FrameType

from rlfleet.compute.processes import stop_sessions


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_in_foreground(command: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run ``command`` until it exits or this process gets SIGINT/SIGTERM; then stop every
    process it started. Returns its exit code (0 when stopped by a signal)."""
    # Both signals stop the server, even where SIGINT was inherited ignored (from a parent
    # that ignores it, as a non-interactive shell does for its background jobs).
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    proc = subprocess.Popen(list(command), env=None if env is None else dict(env),
                            start_new_session=True)  # fmt: skip
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_sessions([proc.pid], grace_s=5.0)
        proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
