"""The MLflow layer: runs found by prefix or name, metrics in batches, WAL for SQLite."""

from __future__ import annotations

import json
import sqlite3

import pytest

from rlfleet.errors import RunNotFoundError
from rlfleet.tracking.store import RUNS_VIEW_TAG, MetricPoint, redact_uri


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


def test_a_new_store_lists_one_experiment_each_with_the_reward_column(workspace):
    """MLflow's own empty ``Default`` is gone from a new store; experiments rlfleet makes, and
    at ``rlfleet ui`` any other, carry the shared run-list view with the reward as a column."""
    store = workspace.tracking
    assert store.experiments() == []
    made = store.experiment("pong")
    other = store.client.create_experiment("made-by-mlflow")  # as a user's script would
    assert (
        RUNS_VIEW_TAG in made.tags and RUNS_VIEW_TAG not in store.client.get_experiment(other).tags
    )
    store.share_runs_view()
    for experiment in store.experiments():
        view = json.loads(experiment.tags[RUNS_VIEW_TAG])
        assert "metrics.`episode_reward_mean`" in view["selectedColumns"]
    assert sorted(e.name for e in store.experiments()) == ["made-by-mlflow", "pong"]
