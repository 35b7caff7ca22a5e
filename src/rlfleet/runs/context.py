"""Where ``run.log(...)`` sends its points: the cluster's tracker actor, or MLflow directly.

Inside a submitted run the supervisor sets ``RLFLEET_RUN_ID``, ``RLFLEET_TRACKING_URI`` and
``RLFLEET_TRACKER`` for the entry script and every task it starts; a process connected to the
cluster logs through the tracker actor (fire and forget, flushed at exit). Anywhere else points
go straight to the MLflow store.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Protocol

from rlfleet.tracking.tracker import NAMESPACE

if TYPE_CHECKING:
    from rlfleet.tracking.store import TrackingStore

logger = logging.getLogger(__name__)

RUN_ID_ENV = "RLFLEET_RUN_ID"
TRACKING_URI_ENV = "RLFLEET_TRACKING_URI"
TRACKER_ENV = "RLFLEET_TRACKER"
FLUSH_TIMEOUT_S = 30.0

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
