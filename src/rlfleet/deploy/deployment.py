"""``rlfleet deploy``: serve a run's policy on a local Ray cluster until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rlfleet.compute.cluster import LocalCluster, use_workspace_token
from rlfleet.compute.target import ComputeTarget
from rlfleet.errors import ClusterError

if TYPE_CHECKING:
    from rlfleet.workspace import Workspace

logger = logging.getLogger(__name__)


class Deployment:
    """A local head node running Ray Serve with the policy application."""

    def __init__(self, workspace: Workspace, *, replicas: int, host: str, port: int) -> None:
        self.workspace = workspace
        self.replicas = replicas
        self.host = host
        self.port = port
        self.cluster: LocalCluster | None = None
        self.stop_requested = threading.Event()
        """Set by SIGINT or SIGTERM (in the main thread) from the moment ``start`` begins."""

    def _catch_stop_signals(self) -> None:
        """SIGINT and SIGTERM set ``stop_requested`` (main thread only). Called again after
        ``ray.init``, whose core worker installs its own SIGTERM handler: that one ends the
        process at once, leaving the serving cluster running (seen when a client stopped the
        endpoint as soon as /healthz answered, while ``serve.run`` was still returning)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop_requested.set())

    def start(self, checkpoint: Path, *, run_id: str | None, token: str | None) -> str:
        """Start the cluster and the endpoint; returns its URL once it answers."""
        import ray
        from ray import serve

        from rlfleet.deploy.serve import application

        self._catch_stop_signals()
        use_workspace_token(self.workspace)
        node = ComputeTarget("serve", cpus=max(2, self.replicas + 1))
        self.cluster = LocalCluster.start(self.workspace, node, owner=f"deploy:{run_id or 'file'}")
        try:
            self.cluster.wait_for_nodes(["head"], timeout_s=180)
            ray.init(
                address=self.cluster.gcs_address, logging_level=logging.WARNING, log_to_driver=False
            )
            self._catch_stop_signals()
            serve.start(http_options={"host": self.host, "port": self.port})
            app = application(
                checkpoint.read_bytes(), run_id=run_id, token=token, replicas=self.replicas
            )
            serve.run(app, name="policy", route_prefix="/")
        except BaseException:
            self.stop()
            raise
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Shut the endpoint and the cluster down (no process left)."""
        import ray

        if ray.is_initialized():
            try:
                from ray import serve

                serve.shutdown()
            except Exception as err:
                logger.warning("serve shutdown: %s", err)
            ray.shutdown()
        if self.cluster is not None:
            left = self.cluster.stop()
            self.cluster = None
            if left:
                raise ClusterError(f"{left} processes of the serving cluster would not stop.")


def serve_until_signalled(deployment: Deployment, url: str, on_ready: str) -> int:
    """Block until SIGINT or SIGTERM (caught since ``deployment.start`` began), then stop
    cleanly."""
    print(on_ready, flush=True)
    while not deployment.stop_requested.wait(0.5):
        pass
    print("shutting the endpoint down", flush=True)
    started = time.monotonic()
    deployment.stop()
    print(f"stopped in {time.monotonic() - started:.1f} s", flush=True)
    return 0
