"""The run tracker: a Ray actor on the head node that writes metrics into MLflow in batches.

Entry scripts and their tasks log through it from any node with a fire-and-forget actor call, so
logging costs a training loop almost nothing, nodes need no access to the store, and the store
sees a few batched writes instead of many small ones. One tracker serves every run of a cluster
(named after the tracking URI); :meth:`RunTracker.flush` writes everything pending at once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import defaultdict
from typing import Any

from rlfleet.tracking.store import MetricPoint, TrackingStore, use_credentials

logger = logging.getLogger(__name__)

NAMESPACE = "rlfleet"
FLUSH_INTERVAL_S = 0.5
BATCH_WINDOW_S = 0.05


def tracker_name(tracking_uri: str) -> str:
    return "tracker-" + hashlib.sha1(tracking_uri.encode()).hexdigest()[:12]


class RunTracker:
    """Buffers metric points per run and writes them with MLflow's ``log_batch``."""

    def __init__(self, tracking_uri: str, credentials: tuple[str, str] | None = None) -> None:
        import os

        if credentials is not None:  # a tracking server's user and password (rlfleet server)
            use_credentials(credentials)
        # A server that is down fails a write at once (MLflow's client would retry it for
        # minutes, holding every point behind it): the points stay pending here and the write
        # is tried again every FLUSH_INTERVAL_S until the server is back.
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "20"
        self._failing = False
        self._store = TrackingStore(tracking_uri)
        self._store.client  # noqa: B018 - open the store now, not on the first metric
        self._pending: dict[str, list[MetricPoint]] = defaultdict(list)
        self._lock = threading.Lock()
        self._arrived = threading.Event()
        self._write_lock = threading.Lock()
        self._written = 0
        threading.Thread(target=self._flush_forever, daemon=True, name="tracker-flush").start()

    def ready(self) -> bool:
        return True

    def log(self, run_id: str, points: list[tuple[str, float, int, int]]) -> None:
        with self._lock:
            self._pending[run_id].extend(MetricPoint(*p) for p in points)
        self._arrived.set()

    def log_artifact(
        self, run_id: str, name: str, data: bytes, artifact_path: str | None = None
    ) -> None:
        """Attach a file (sent as ``name`` and its bytes) to the run."""
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory(prefix="rlfleet-artifact-") as folder:
            path = Path(folder) / name
            path.write_bytes(data)
            self._store.log_artifact(run_id, path, artifact_path)

    def flush(self) -> int:
        """Write everything pending now; returns the number of points written so far."""
        self._write_pending()
        return self._written

    def _flush_forever(self) -> None:
        while True:
            # Write soon after points arrive, gathering whatever else comes in a short window.
            self._arrived.wait(FLUSH_INTERVAL_S)
            time.sleep(BATCH_WINDOW_S)
            self._arrived.clear()
            try:
                self._write_pending()
            except Exception as err:  # keep the points and try again on the next tick
                if not self._failing:
                    logger.warning("tracker: writing metrics failed (%s); will retry", err)
                self._failing = True
            else:
                if self._failing:
                    logger.warning("tracker: writing metrics again")
                self._failing = False

    def _write_pending(self) -> None:
        from mlflow.exceptions import MlflowException

        with self._write_lock:
            with self._lock:
                batches, self._pending = dict(self._pending), defaultdict(list)
            failed: dict[str, list[MetricPoint]] = {}
            error: Exception | None = None
            for run_id, points in batches.items():
                try:
                    self._written += self._store.log_points(run_id, points)
                except MlflowException as err:
                    if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                        logger.warning(
                            "tracker: dropping %d points of unknown run %s", len(points), run_id
                        )
                        continue
                    failed[run_id], error = points, err
                except Exception as err:
                    failed[run_id], error = points, err
            if failed:
                with self._lock:  # put them back in front, in order
                    for run_id, points in failed.items():
                        self._pending[run_id][:0] = points
            if error is not None:
                raise error


def _head_node_id() -> str:
    """The connected cluster's head node: the one rlfleet labelled so (an ``ssh`` target's),
    else the one Ray's Jobs API takes for the head, else the caller's."""
    import ray

    labelled = [
        node["NodeID"]
        for node in ray.nodes()
        if node.get("Alive") and (node.get("Labels") or {}).get("rlfleet/role") == "head"
    ]
    if labelled:
        return labelled[0]
    try:
        from ray._private import ray_constants
        from ray.experimental.internal_kv import _internal_kv_get

        head = _internal_kv_get(
            ray_constants.KV_HEAD_NODE_ID_KEY, namespace=ray_constants.KV_NAMESPACE_JOB
        )
    except Exception:  # an internal API of Ray's: fall back to where the caller runs
        head = None
    return head.decode() if head else ray.get_runtime_context().get_node_id()


def ensure_tracker(
    tracking_uri: str,
    label_selector: dict[str, str] | None = None,
    credentials: tuple[str, str] | None = None,
) -> Any:
    """The cluster's tracker for ``tracking_uri``, started (detached, 0 CPUs) if not running.

    Without ``label_selector`` it goes on the cluster's head node. The caller must be connected to
    the cluster (``ray.init``). Returns at once; calls to the
    actor queue until it is up. ``credentials`` (a tracking server's user and password) go to
    the actor as an argument: not in its runtime env, which Ray's job and actor listings show.
    """
    import ray

    options: dict[str, Any] = {
        "name": tracker_name(tracking_uri),
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "num_cpus": 0,
        "max_restarts": 3,
    }
    if label_selector:
        options["label_selector"] = label_selector
    else:  # a cluster of other hosts: on its head node, so that it pins no worker node (idle
        # ones go away) and is not cut off with a worker host
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(_head_node_id(), soft=False)
    return ray.remote(RunTracker).options(**options).remote(tracking_uri, credentials)
