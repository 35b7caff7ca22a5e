"""The MLflow layer: runs found by prefix or name, metrics in batches, WAL for SQLite."""

from __future__ import annotations

import sqlite3

import pytest

from rlfleet.errors import RunNotFoundError
from rlfleet.tracking.store import MetricPoint, redact_uri


def test_runs_metrics_and_lookup(workspace):
    store = workspace.tracking
    experiment = store.experiment("store").experiment_id
    run_id = store.create_run(experiment, name="first-run")
    written = store.log_points(
        run_id, [MetricPoint("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(2500)]
    )
    assert written == 2500
    history = store.metric_history(run_id, "loss")
    assert [p.step for p in history] == list(range(2500))
    assert store.get_run(run_id[:10]).info.run_id == run_id
    assert store.get_run("first-run").info.run_id == run_id
    with pytest.raises(RunNotFoundError, match="no run with id"):
        store.get_run("ffff")
    db = workspace.state_dir / "mlflow.db"
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_uris_are_shown_without_their_password():
    assert (
        redact_uri("postgresql://rl:s3cret@db:5432/rlfleet")
        == "postgresql://rl:***@db:5432/rlfleet"
    )
    assert redact_uri("postgresql://rl:p%40ss@db/rlfleet") == "postgresql://rl:***@db/rlfleet"
    assert redact_uri("postgresql://rl@db/rlfleet") == "postgresql://rl@db/rlfleet"
    assert redact_uri("sqlite:////ws/.rlfleet/mlflow.db") == "sqlite:////ws/.rlfleet/mlflow.db"
