"""Where ``run.log(...)`` sends its points: the cluster's tracker actor, or MLflow directly.

Inside a submitted run the supervisor sets ``RLFLEET_RUN_ID``, ``RLFLEET_TRACKING_URI`` and
``RLFLEET_TRACKER`` for the entry script and every task it starts; a process connected to the
cluster logs through the tracker actor (fire and forget, flushed at exit), and uploads its files
through it too: the nodes need no access to the store (nor its credentials). Anywhere else
points and files go straight to the MLflow store.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rlfleet.tracking.tracker import NAMESPACE

if TYPE_CHECKING:
    from rlfleet.tracking.store import TrackingStore

logger = logging.getLogger(__name__)

RUN_ID_ENV = "RLFLEET_RUN_ID"
TRACKING_URI_ENV = "RLFLEET_TRACKING_URI"
TRACKER_ENV = "RLFLEET_TRACKER"
FLUSH_TIMEOUT_S = 30.0
UPLOAD_TIMEOUT_S = 300.0

Point = tuple[str, float, int, int]


class MetricWriter(Protocol):
    def write(self, points: list[Point]) -> None: ...
    def flush(self) -> None: ...


class StoreWriter:
    """Writes each call's points straight into the MLflow store."""

    def __init__(self, store: TrackingStore, run_id: str) -> None:
        self._store = store
        self._run_id = run_id

    def write(self, points: list[Point]) -> None:
        from rlfleet.tracking.store import MetricPoint

        self._store.log_points(self._run_id, [MetricPoint(*p) for p in points])

    def flush(self) -> None:
        pass


class TrackerWriter:
    """Sends points to the cluster's tracker actor without waiting; :meth:`flush` waits."""

    def __init__(self, actor: Any, run_id: str) -> None:
        self._actor = actor
        self._run_id = run_id

    def write(self, points: list[Point]) -> None:
        self._actor.log.remote(self._run_id, points)

    def flush(self) -> None:
        import ray

        ray.get(self._actor.flush.remote(), timeout=FLUSH_TIMEOUT_S)

    def upload(self, local_path: Path, artifact_path: str | None) -> None:
        """Attach a file (or every file of a folder) to the run through the tracker, which
        writes it to the store; returns once it is there."""
        import ray

        if local_path.is_dir():
            files = [p for p in sorted(local_path.rglob("*")) if p.is_file()]
            base = f"{artifact_path}/{local_path.name}" if artifact_path else local_path.name
            for path in files:
                parent = path.parent.relative_to(local_path).as_posix()
                self.upload(path, base if parent == "." else f"{base}/{parent}")
            return
        call = self._actor.log_artifact.remote(
            self._run_id, local_path.name, local_path.read_bytes(), artifact_path
        )
        ray.get(call, timeout=UPLOAD_TIMEOUT_S)


def connected_to_ray() -> bool:
    """Whether this process is a Ray driver or worker (without importing Ray if it is not)."""
    if "ray" not in sys.modules:
        return False
    import ray

    return ray.is_initialized()


def tracker_writer(run_id: str) -> TrackerWriter | None:
    """A writer through the tracker actor of the run's cluster (this process is connected)."""
    name = os.environ.get(TRACKER_ENV)
    if not name:
        return None
    import ray

    try:
        actor = ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        logger.warning("tracker %s not found; logging straight to the store", name)
        return None
    writer = TrackerWriter(actor, run_id)
    atexit.register(_flush_quietly, writer)
    return writer


def _flush_quietly(writer: MetricWriter) -> None:
    try:
        writer.flush()
    except Exception as err:  # the cluster may already be gone at exit
        logger.warning("could not flush metrics at exit: %s", err)
