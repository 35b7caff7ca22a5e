"""A thin layer over MLflow's client: the calls rlfleet makes, with its errors made plain.

MLflow is the store; nothing here re-implements it. The layer adds what rlfleet needs around it:
experiments created with the workspace's artifact root, run lookups that fail with a clear
message, SQLite in WAL mode so that several processes can log at once (and its tables created
under a file lock, so that several processes can open a fresh store at once).
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

from rlfleet.errors import ExperimentNotFoundError, RunNotFoundError, WorkspaceConfigError

if TYPE_CHECKING:
    from mlflow.entities import Experiment, Run
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
# Tells MLflow's UI these are model-training runs (it opens GenAI views otherwise).
EXPERIMENT_KIND = "mlflow.experimentKind"
MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch call
MLFLOW_DEFAULT_EXPERIMENT_ID = "0"
RUNS_VIEW_KEY = "rlfleet"
"""The run list rlfleet links to: MLflow's own shared view of an experiment (its UI's "share"
button stores the view in the experiment's tag ``mlflow.sharedViewState.KEY`` and links to it
with ``viewStateShareKey=KEY``): the mean reward first, then where the run came from."""
RUNS_VIEW = {"selectedColumns": ["metrics.`episode_reward_mean`", "attributes.`Source`"]}
RUNS_VIEW_TAG = f"mlflow.sharedViewState.{RUNS_VIEW_KEY}"


class MetricPoint(NamedTuple):
    """One logged value: MLflow's (key, value, timestamp in ms, step)."""

    key: str
    value: float
    timestamp: int
    step: int


class TrackingStore:
    """The workspace's MLflow store, addressed by ``tracking_uri``."""

    def __init__(self, tracking_uri: str, *, artifact_location: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_location = artifact_location

    @cached_property
    def client(self) -> MlflowClient:
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        from mlflow.tracking import MlflowClient

        if not self.tracking_uri.startswith("sqlite:///"):
            return MlflowClient(tracking_uri=driver_uri(self.tracking_uri))
        db_path = Path(self.tracking_uri.removeprefix("sqlite:///"))
        # MLflow creates the tables (running its migrations) when it opens a fresh store;
        # processes that start together must not run them at once ("table already exists").
        with _file_lock(db_path.with_name(db_path.name + ".lock")):
            fresh = not db_path.exists()
            client = MlflowClient(tracking_uri=self.tracking_uri)
            client.search_experiments(max_results=1)
            if fresh:
                # MLflow's own experiment 0 ("Default", its artifacts in ./mlruns of whatever
                # folder the process ran in): a new workspace lists one experiment, its own
                # default, made with the workspace's artifact root.
                client.delete_experiment(MLFLOW_DEFAULT_EXPERIMENT_ID)
            _use_wal(db_path)
        return client

    # -- experiments ----------------------------------------------------------------------------

    def experiment(self, name: str, *, create: bool = True) -> Experiment:
        """The experiment called ``name``, created (with the workspace's artifact root) if new."""
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found
        if not create:
            raise ExperimentNotFoundError(
                f"no experiment named {name!r}; list them with `rlfleet runs list --all`."
            )
        location = None
        if self.artifact_location:
            location = f"{self.artifact_location.rstrip('/')}/{uuid4().hex}"
        try:
            experiment_id = self.client.create_experiment(
                name,
                artifact_location=location,
                tags={
                    EXPERIMENT_KIND: "custom_model_development",
                    RUNS_VIEW_TAG: json.dumps(RUNS_VIEW),
                },
            )
        except MlflowException:  # created meanwhile by another process
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found
        return self.client.get_experiment(experiment_id)

    def share_runs_view(self) -> None:
        """Give every experiment the run list that rlfleet links to (:data:`RUNS_VIEW`), also
        those made before rlfleet did so on creation, or by MLflow itself."""
        for experiment in self.experiments():
            if RUNS_VIEW_TAG not in experiment.tags:
                self.client.set_experiment_tag(
                    experiment.experiment_id, RUNS_VIEW_TAG, json.dumps(RUNS_VIEW)
                )

    def experiment_name(self, experiment_id: str) -> str:
        return self.client.get_experiment(experiment_id).name

    def experiments(self) -> list[Experiment]:
        return list(self.client.search_experiments())

    # -- runs -----------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        tags: dict[str, str] | None = None,
        parent_id: str | None = None,
    ) -> str:
        all_tags = dict(tags or {})
        if parent_id:
            all_tags[PARENT_TAG] = parent_id
        run = self.client.create_run(experiment_id, run_name=name, tags=all_tags)
        return run.info.run_id

    def get_run(self, run_id: str) -> Run:
        """The run with this id (or unique id prefix, or name)."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id)
        except MlflowException:
            pass
        matches = [
            r
            for r in self._recent_runs()
            if r.info.run_id.startswith(run_id) or r.info.run_name == run_id
        ]
        if len(matches) == 1 and run_id:
            return matches[0]
        if len(matches) > 1:
            raise RunNotFoundError(
                f"{run_id!r} matches {len(matches)} runs; give more of the run id."
            )
        raise RunNotFoundError(
            f"no run with id {run_id!r} in this workspace's store; "
            "list runs with `rlfleet runs list`."
        )

    def _recent_runs(self, limit: int = 2000) -> list[Run]:
        ids = [e.experiment_id for e in self.experiments()]
        if not ids:
            return []
        return list(self.client.search_runs(ids, max_results=limit))

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        *,
        filter_string: str = "",
        max_results: int = 1000,
    ) -> list[Run]:
        return list(
            self.client.search_runs(
                list(experiment_ids),
                filter_string=filter_string,
                max_results=max_results,
                order_by=["attributes.start_time DESC"],
            )
        )

    def children(self, run: Run) -> list[Run]:
        return self.search_runs(
            [run.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{run.info.run_id}'"
        )

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def set_mlflow_status(self, run_id: str, status: str, *, end: bool) -> None:
        if end:
            self.client.set_terminated(run_id, status, end_time=int(time.time() * 1000))
        else:
            self.client.update_run(run_id, status=status)

    # -- metrics --------------------------------------------------------------------------------

    def log_points(self, run_id: str, points: Iterable[MetricPoint]) -> int:
        """Write metric points in batches; returns how many were written."""
        from mlflow.entities import Metric

        batch = [Metric(p.key, float(p.value), int(p.timestamp), int(p.step)) for p in points]
        for start in range(0, len(batch), MAX_BATCH):
            self.client.log_batch(run_id, metrics=batch[start : start + MAX_BATCH])
        return len(batch)

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        history = self.client.get_metric_history(run_id, key)
        points = [MetricPoint(m.key, m.value, m.timestamp, m.step) for m in history]
        return sorted(points, key=lambda p: (p.step, p.timestamp))

    # -- artifacts ------------------------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | Path, artifact_path: str | None = None
    ) -> None:
        self.client.log_artifact(run_id, str(local_path), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        return [a.path for a in self.client.list_artifacts(run_id, path)]

    def read_artifact(self, run_id: str, path: str) -> bytes:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            local = self.client.download_artifacts(run_id, path, tmp)
            return Path(local).read_bytes()

    def download_artifacts(self, run_id: str, path: str, dst: str | Path) -> Path:
        return Path(self.client.download_artifacts(run_id, path, str(dst)))


def use_credentials(credentials: tuple[str, str]) -> None:
    """Make this process's MLflow client send ``(user, password)`` to a tracking server
    (MLflow reads them from its variables at each request; never on a command line)."""
    import os

    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = credentials


def redact_uri(uri: str) -> str:
    """The URI with its password, if any, shown as ``***`` (for printing)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def driver_uri(uri: str) -> str:
    """The URI MLflow (SQLAlchemy) is given for ``uri``. A plain ``postgresql://`` means the
    psycopg (3) driver to SQLAlchemy 2.1; with only psycopg2 installed, that one is named.

    Raises:
        WorkspaceConfigError: no PostgreSQL driver is installed.
    """
    scheme, sep, rest = uri.partition("://")
    if scheme not in ("postgresql", "postgres") or not sep:
        return uri
    if importlib.util.find_spec("psycopg") is not None:
        return uri
    if importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2://{rest}"
    raise WorkspaceConfigError(
        f"tracking store {redact_uri(uri)} needs a PostgreSQL driver: "
        "pip install 'psycopg[binary]' (or psycopg2-binary)."
    )


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made if missing) for the ``with`` block; without a
    writable folder (a read-only copy of a workspace) go on unlocked."""
    try:
        handle = open(path, "a")  # noqa: SIM115 - closed below
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # releases the lock


def _use_wal(db_path: Path) -> None:
    """Put the SQLite store in WAL mode (persistent), so readers never block the writer."""
    try:
        with sqlite3.connect(db_path, timeout=30) as conn:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as err:  # a read-only copy of a workspace still reads fine
        logger.debug("could not switch %s to WAL: %s", db_path, err)
