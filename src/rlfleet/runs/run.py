"""A run: the handle users hold, as the seed's ``Run``.

``Run.get_context()`` inside an entry script gives the submitted run (or, outside any run, a
fresh local one) to log into; ``experiment.submit(spec)`` gives a run to watch, wait for, cancel
and read back.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rlfleet.errors import RunTimeoutError
from rlfleet.runs import record
from rlfleet.runs.context import (
    RUN_ID_ENV,
    TRACKING_URI_ENV,
    MetricWriter,
    StoreWriter,
    TrackerWriter,
    connected_to_ray,
    tracker_writer,
)
from rlfleet.runs.polling import poll_interval
from rlfleet.runs.status import RunStatus

if TYPE_CHECKING:
    from mlflow.entities import Run as MlflowRun

    from rlfleet.tracking.store import MetricPoint, TrackingStore
    from rlfleet.workspace import Workspace

DRIVER_LOG = "driver_log.txt"
_context: Run | None = None


class Run:
    """A tracked run (or one of its children). Cheap to make; every property reads the store."""

    def __init__(
        self,
        run_id: str,
        *,
        workspace: Workspace | None = None,
        store: TrackingStore | None = None,
    ) -> None:
        if store is None:
            if workspace is None:
                from rlfleet.workspace import Workspace

                workspace = Workspace.from_config()
            store = workspace.tracking
        self.workspace = workspace
        self.store = store
        self.id = run_id
        self._writer: MetricWriter | None = None
        self._tracker_checked = False
        self._steps: dict[str, int] = {}

    @classmethod
    def find(cls, ref: str, *, workspace: Workspace) -> Run:
        """The run whose id (or unique id prefix, or name) is ``ref``.

        Raises:
            RunNotFoundError: no run, or several, match.
        """
        found = workspace.tracking.get_run(ref)
        return cls(found.info.run_id, workspace=workspace)

    def __repr__(self) -> str:
        return f"Run(id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # -- the context of an entry script ---------------------------------------------------------

    @classmethod
    def get_context(cls) -> Run:
        """The run this code runs in: the submitted run inside a job (driver or any node),
        otherwise a fresh local run in the workspace around the current folder."""
        global _context
        if _context is None:
            run_id = os.environ.get(RUN_ID_ENV)
            if run_id:
                from rlfleet.tracking.store import TrackingStore

                _context = cls(run_id, store=TrackingStore(os.environ[TRACKING_URI_ENV]))
            else:
                _context = _start_local_run()
        return _context

    # -- logging --------------------------------------------------------------------------------

    def log(self, name: str, value: float, step: int | None = None) -> None:
        """Log one value of metric ``name``; without ``step``, steps count 0, 1, 2, ..."""
        self.log_metrics({name: value}, step=step)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log several metrics at the same step."""
        now = int(time.time() * 1000)
        points = []
        for name, value in metrics.items():
            point_step = self._next_step(name) if step is None else int(step)
            points.append((name, float(value), now, point_step))
        self._metric_writer().write(points)

    def flush(self) -> None:
        """Wait until every logged point is in the store."""
        if self._writer is not None:
            self._writer.flush()

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Attach a file (or folder) to the run (inside a submitted run, through the cluster's
        tracker)."""
        writer = self._metric_writer()
        if isinstance(writer, TrackerWriter):
            writer.upload(Path(local_path), artifact_path)
            return
        self.store.log_artifact(self.id, local_path, artifact_path)

    def _next_step(self, name: str) -> int:
        step = self._steps.get(name, 0)
        self._steps[name] = step + 1
        return step

    def _metric_writer(self) -> MetricWriter:
        if not self._tracker_checked and connected_to_ray():
            # Once this process is connected to the cluster, log through its tracker.
            self._tracker_checked = True
            self.flush()
            self._writer = tracker_writer(self.id) or self._writer
        if self._writer is None:
            self._writer = StoreWriter(self.store, self.id)
        return self._writer

    # -- reading --------------------------------------------------------------------------------

    def _get(self) -> MlflowRun:
        return self.store.get_run(self.id)

    @property
    def status(self) -> RunStatus:
        from rlfleet.runs.reconcile import reconcile

        return reconcile(self.store, self._get(), self.workspace)

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._get().data.tags)

    @property
    def role(self) -> str | None:
        return self.tags.get(record.ROLE)

    @property
    def error(self) -> str | None:
        return self.tags.get(record.ERROR)

    @property
    def experiment_name(self) -> str:
        return self.store.experiment_name(self._get().info.experiment_id)

    def get_metrics(self, name: str | None = None) -> dict[str, list[float]]:
        """Values of each metric (or of ``name``), in step order."""
        names = [name] if name else sorted(self._get().data.metrics)
        return {n: [p.value for p in self.get_metric_history(n)] for n in names}

    def get_metric_history(self, name: str) -> list[MetricPoint]:
        """Every point of metric ``name`` with its step and timestamp, in step order."""
        return self.store.metric_history(self.id, name)

    def get_children(self) -> list[Run]:
        """One child run per role (``head``, ``worker``), holding that role's logs."""
        children = [
            Run(r.info.run_id, workspace=self.workspace, store=self.store)
            for r in self.store.children(self._get())
        ]
        order = {role: i for i, role in enumerate(record.ROLES)}
        return sorted(children, key=lambda c: order.get(c.role or "", len(order)))

    def get_child(self, role: str) -> Run | None:
        return next((c for c in self.get_children() if c.role == role), None)

    def get_logs(self) -> dict[str, str]:
        """This run's log files by name (for a parent run: the head's ``driver_log.txt``)."""
        runs = [self] if self.role else [c for c in self.get_children() if c.role == "head"]
        logs: dict[str, str] = {}
        for run in runs:
            for path in self.store.list_artifacts(run.id):
                if path.endswith(".txt"):
                    logs[path] = self.store.read_artifact(run.id, path).decode(errors="replace")
        return logs

    def driver_log(self) -> str:
        """The entry script's output so far (live on this machine, else the uploaded copy)."""
        local = self._local_driver_log()
        if local is not None and local.exists():
            return local.read_text(errors="replace")
        return self.get_logs().get(DRIVER_LOG, "")

    def _local_driver_log(self) -> Path | None:
        if self.workspace is None:
            return None
        return self.workspace.runs_dir / self.id / DRIVER_LOG

    # -- control --------------------------------------------------------------------------------

    def cancel(
        self, reason: str = "canceled by user", *, wait: bool = True, timeout_s: float = 60
    ) -> RunStatus:
        """Ask the run to stop; it ends CANCELED once its cluster is down."""
        run = self._get()
        if record.status_of(run).is_terminal():
            return record.status_of(run)
        self.store.set_tags(self.id, {record.CANCEL_REQUESTED: reason})
        tags = run.data.tags
        local = tags.get(record.SUPERVISOR_HOST) == socket.gethostname()
        if local and record.SUPERVISOR_PID in tags:
            if record.supervisor_alive(tags):
                os.kill(int(tags[record.SUPERVISOR_PID]), signal.SIGTERM)
            else:  # its supervisor is gone: nothing else will end it
                record.set_status(self.store, self.id, RunStatus.CANCELED, reason=reason)
        if wait:
            return self.wait_for_completion(timeout_s=timeout_s)
        return self.status

    def wait_for_completion(
        self,
        show_output: bool = False,
        *,
        timeout_s: float | None = None,
        poll_s: float = 0.25,
        out: TextIO | None = None,
    ) -> RunStatus:
        """Block until the run ends; with ``show_output`` stream the entry script's output.
        The store is read every ``poll_s`` at first, then every second at most often
        (a long run's follower takes no CPU worth counting from the run)."""
        out = out or sys.stdout
        started = time.monotonic()
        deadline = None if timeout_s is None else started + timeout_s
        output = _OutputFollower(self) if show_output else None
        while True:
            status = self.status
            if output is not None:
                output.show_new(out, final=status.is_terminal())
            if status.is_terminal():
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise RunTimeoutError(
                    f"run {self.id} is still {status.value} after {timeout_s:g} s; "
                    f"`rlfleet runs wait {self.id}` waits again."
                )
            time.sleep(poll_interval(time.monotonic() - started, poll_s, max(poll_s, 1.0)))

    # -- summary --------------------------------------------------------------------------------

    def show(self, *, interval_s: float = 5.0) -> Any:
        """In a notebook: a panel of this run, updated live until it ends (the seed's
        ``RunDetails(run).show()``)."""
        from rlfleet.monitor.notebook import RunDetails

        return RunDetails(self, interval_s=interval_s).show()

    def _repr_html_(self) -> str:
        from rlfleet.monitor.notebook import RunDetails

        return RunDetails(self).html()

    def to_dict(self) -> dict[str, Any]:
        """What ``rlfleet runs show --json`` prints."""
        from rlfleet.runs.summary import run_summary

        return run_summary(self)


class _OutputFollower:
    """Prints what the entry script wrote since last time: from the local log file as it grows,
    or (another machine's run) from the uploaded copy, read every few seconds."""

    REMOTE_POLL_S = 3.0

    def __init__(self, run: Run) -> None:
        self.run = run
        self.shown = 0
        self.next_remote = 0.0

    def show_new(self, out: TextIO, *, final: bool) -> None:
        local = self.run._local_driver_log()
        if local is not None and local.exists():
            with local.open("rb") as handle:
                handle.seek(self.shown)
                chunk = handle.read()
            self.shown += len(chunk)
            text = chunk.decode(errors="replace")
        elif final or time.monotonic() >= self.next_remote:
            self.next_remote = time.monotonic() + self.REMOTE_POLL_S
            full = self.run.get_logs().get(DRIVER_LOG, "")
            text, self.shown = full[self.shown :], max(self.shown, len(full))
        else:
            return
        if text:
            out.write(text)
            out.flush()


def _start_local_run() -> Run:
    """A fresh run in the workspace around the cwd (or MLflow's default store), ended at exit."""
    from rlfleet.errors import WorkspaceNotFoundError
    from rlfleet.workspace import Workspace

    try:
        workspace: Workspace | None = Workspace.from_config()
        store = workspace.tracking
        experiment = workspace.config.default_experiment
    except WorkspaceNotFoundError:
        import mlflow

        from rlfleet.tracking.store import TrackingStore

        workspace, store, experiment = None, TrackingStore(mlflow.get_tracking_uri()), "default"
    experiment_id = store.experiment(experiment).experiment_id
    run_id = store.create_run(
        experiment_id, tags={record.STATUS: RunStatus.RUNNING.value, record.KIND: "local"}
    )
    store.set_mlflow_status(run_id, RunStatus.RUNNING.mlflow_status, end=False)
    run = Run(run_id, workspace=workspace, store=store)

    def finish() -> None:
        run.flush()
        record.set_status(store, run_id, RunStatus.COMPLETED)

    atexit.register(finish)
    return run
