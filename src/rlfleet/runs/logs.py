"""Collecting a run's logs from its cluster: the driver's output and each worker node's.

The driver log is streamed from Ray's Job API into a local file as it is written. Node logs come
from Ray's state API (each node's dashboard agent serves its own log folder), so this works the
same for local nodes and for the nodes of an existing cluster on other machines.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

logger = logging.getLogger(__name__)


class DriverLogStream:
    """Follows a Ray job's driver output into ``path`` on a background thread."""

    def __init__(self, client: JobSubmissionClient, submission_id: str, path: Path) -> None:
        self._client = client
        self._submission_id = submission_id
        self.path = path
        self._thread = threading.Thread(target=self._follow, daemon=True, name="driver-log")

    def start(self) -> DriverLogStream:
        self.path.touch()
        self._thread.start()
        return self

    def _follow(self) -> None:
        async def follow() -> None:
            with self.path.open("a") as out:
                async for chunk in self._client.tail_job_logs(self._submission_id):
                    out.write(chunk)
                    out.flush()

        try:
            asyncio.run(follow())
        except Exception as err:  # the cluster went away; finish() fetches what is left
            logger.debug("driver log stream ended: %s", err)

    def finish(self, timeout_s: float = 2.0) -> None:
        """Wait briefly for the stream to end, then make the file the job's whole log."""
        self._thread.join(timeout_s)
        try:
            full = self._client.get_job_logs(self._submission_id)
        except Exception as err:
            logger.debug("could not fetch the whole driver log: %s", err)
            return
        if len(full) >= self.path.stat().st_size:
            self.path.write_text(full)


def node_log(gcs_address: str, node_id: str, node_name: str, job_hex: str | None) -> str:
    """A worker node's log: what the run's tasks and actors there wrote (stdout and stderr)."""
    from ray.util.state import get_log, list_logs

    files = list_logs(address=gcs_address, node_id=node_id, timeout=10)
    parts = [f"node {node_name} (Ray node id {node_id})\n"]
    task_files = sorted(files.get("worker_out", []) + files.get("worker_err", []))
    for name in task_files:
        if job_hex and f"-{job_hex}-" not in name:
            continue
        text = "".join(
            get_log(
                address=gcs_address, node_id=node_id, filename=name, timeout=10, errors="replace"
            )
        )
        if text.strip():
            parts.append(f"==> {name} <==\n{text.rstrip()}\n")
    if len(parts) == 1:
        parts.append("(no output from this run's tasks on this node)\n")
    return "\n".join(parts)
