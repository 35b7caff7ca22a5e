"""Secure defaults, checked on what runs: every server rlfleet starts listens on 127.0.0.1 only,
the clusters it starts refuse clients without the workspace's Ray token, and checkpoints holding
arbitrary Python objects are refused, not executed.

The serving endpoint of ``rlfleet deploy`` (127.0.0.1, bearer token) is checked in
tests/deploy/test_serve.py (``test_endpoint_binds_loopback_and_stops_cleanly_on_sigterm``,
``test_bad_requests_get_a_clear_4xx`` with no or a wrong token). Ray's own internal ports (GCS,
raylets, object managers, agents) listen on all interfaces, as the README says; they are not
checked here: the token is what guards them.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import requests
import torch
from support import (
    cli_in_process,
    free_port,
    listening_addresses,
    processes_with,
    still_alive,
    wait_until,
    write_spec,
)

from rlfleet import Run, RunStatus, Workspace
from rlfleet.compute.cluster import LocalCluster, ray_auth_env
from rlfleet.compute.processes import session_processes
from rlfleet.impala.checkpoint import load_checkpoint
from rlfleet.tracking.store import MetricPoint


@contextmanager
def serving(
    args: list[str], workspace: Workspace, port: int, env: dict[str, str] | None = None
) -> Iterator[list[str]]:
    """Run ``rlfleet ARGS`` (a server) until it listens on ``port``; yields the addresses it
    listens on there, then stops it (Ctrl-C to its process group) and checks it is gone."""
    log = workspace.state_dir / f"server-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rlfleet.cli.main", *args, "--port", str(port)],
            cwd=workspace.root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env=env,
        )  # fmt: skip
    try:
        up = wait_until(lambda: listening_addresses(port) or proc.poll() is not None, 120)
        assert up and proc.poll() is None, log.read_text()[-3000:]
        started = psutil.Process(proc.pid).children(recursive=True)
        yield listening_addresses(port)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert wait_until(lambda: not listening_addresses(port), 30), "still listening after Ctrl-C"
    assert not still_alive(started), f"left behind after Ctrl-C: {still_alive(started)}"


def test_mlflow_ui_listens_on_loopback_only(workspace):
    port = free_port()
    with serving(["ui"], workspace, port) as addresses:
        assert addresses == ["127.0.0.1"]
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200


def test_tensorboard_listens_on_loopback_only(workspace):
    store = workspace.tracking
    run_id = store.create_run(store.experiment("board").experiment_id)
    store.log_points(run_id, [MetricPoint("episode_reward_mean", i, 1000 + i, i) for i in range(5)])
    port = free_port()
    with serving(["tensorboard", run_id], workspace, port) as addresses:
        assert addresses == ["127.0.0.1"]
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200


@pytest.mark.cluster
def test_nothing_rlfleet_starts_sends_usage_data(workspace, tmp_path):
    """A user whose environment says nothing of telemetry runs ``rlfleet ui`` and submits a run:
    every process that this starts (the UI's server, the run's supervisor, the cluster's nodes,
    Ray's workers, the entry script) has MLflow's telemetry off, and Ray's have its usage stats
    off too (telemetry.py)."""
    quiet = ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "RAY_USAGE_STATS_ENABLED")
    env = {k: v for k, v in os.environ.items() if k not in quiet}
    spec = write_spec(tmp_path / "run.yaml", entry_script="sleeps.py")
    port = free_port()
    with serving(["ui"], workspace, port, env=env):
        ui = [p for p in processes_with(f"--port {port}") if "mlflow" in " ".join(p.cmdline())]
        submitted = subprocess.run(
            [sys.executable, "-m", "rlfleet.cli.main", "submit", str(spec), "--json"],
            cwd=workspace.root, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        run = Run(json.loads(submitted.stdout)["id"], workspace=workspace)
        try:
            assert wait_until(lambda: "started" in run.get_metrics(), 120), run.to_dict()
            [cluster] = LocalCluster.all(workspace)
            nodes = session_processes(node.pid for node in cluster.nodes)
            supervisor = processes_with(f"--run-id {run.id}")
            entry = processes_with(
                "sleeps.py"
            )  # (Ray's Jobs API starts it in a session of its own)
            assert ui and supervisor and entry, (ui, supervisor, entry)
            checked = []
            for proc in [*ui, *supervisor, *nodes, *entry]:
                seen = proc.environ()
                if not seen:  # (Ray's workers retitle themselves, which blanks it in /proc)
                    continue
                assert seen.get("MLFLOW_DISABLE_TELEMETRY") == "true", proc.cmdline()
                if proc in nodes:
                    assert seen.get("RAY_USAGE_STATS_ENABLED") == "0", proc.cmdline()
                checked.append(proc.name())
            assert {"raylet", "gcs_server"} <= set(checked), checked  # (children inherit theirs)
        finally:
            run.cancel()
        assert run.wait_for_completion(timeout_s=60) is RunStatus.CANCELED


# Tries to join a cluster as a driver; prints what happened.
JOIN = """
import sys, ray
try:
    ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
    print("JOINED", ray.cluster_resources().get("CPU"))
except Exception as err:
    print("REFUSED", type(err).__name__, err)
"""


def _join(address: str, auth_env: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["RAY_gcs_server_port_wait_time_s"] = "3"  # give up after ~3 s, not Ray's 20
    env.update(auth_env)
    proc = subprocess.run(
        [sys.executable, "-c", JOIN, address],
        env=env, cwd=Path.home(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return proc.stdout + proc.stderr


@pytest.mark.cluster
def test_clusters_bind_the_dashboard_to_loopback_and_require_the_token(warm_workspace):
    """The warm cluster of the session (started by `rlfleet cluster up`, as every local
    cluster is started): its dashboard (and Jobs API) on 127.0.0.1, and no way in without the
    workspace's token, over HTTP or as a Ray driver."""
    [cluster] = [c for c in LocalCluster.all(warm_workspace) if c.owner == "warm"]
    assert listening_addresses(cluster.dashboard_port) == ["127.0.0.1"]

    jobs = f"{cluster.dashboard_url}/api/jobs/"
    token = Path(cluster.token_path).read_text().strip()
    assert requests.get(jobs, timeout=10).status_code == 401
    assert requests.get(jobs, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code in (401, 403)  # fmt: skip
    assert requests.get(jobs, headers={"Authorization": f"Bearer {token}"}, timeout=10).ok
    assert Path(cluster.token_path).stat().st_mode & 0o077 == 0  # readable by its owner only

    refused = _join(cluster.gcs_address, {})
    assert refused.startswith("REFUSED") and "InvalidAuthToken" in refused, refused
    joined = _join(cluster.gcs_address, ray_auth_env(warm_workspace))
    assert joined.startswith("JOINED"), joined


# -- checkpoints --------------------------------------------------------------------------------


class RunsACommand:
    """Unpickling this runs ``touch MARKER`` (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious_checkpoint(path: Path, marker: Path) -> Path:
    payload = {"format_version": 1, "learner": {}, "counters": {}, "config": {}, "env_id": "x"}
    payload["config"] = {"gift": RunsACommand(marker)}
    torch.save(payload, path)
    return path


def test_a_checkpoint_with_a_pickled_object_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = _malicious_checkpoint(tmp_path / "checkpoint_000001.pt", marker)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint(path)
    assert not marker.exists()


def test_commands_refuse_a_malicious_checkpoint_of_a_run(workspace, tmp_path):
    """``evaluate``, ``export`` and ``deploy`` of a run whose checkpoint artifact holds a
    pickled object: a one-line error each, and the object's code never runs."""
    marker = tmp_path / "pwned"
    checkpoint = _malicious_checkpoint(tmp_path / "checkpoint_000001.pt", marker)
    store = workspace.tracking
    run_id = store.create_run(store.experiment("trojan").experiment_id)
    store.log_artifact(run_id, checkpoint, "checkpoints")
    for args in (
        ["evaluate", run_id, "--no-register"],
        ["export", run_id, "--format", "onnx", "-o", str(tmp_path / "policy.onnx")],
        ["deploy", run_id, "--port", str(free_port())],
    ):
        result = cli_in_process(*args, workspace=workspace.root)
        assert result.code != 0, result.out
        lines = result.err.splitlines()
        assert len(lines) == 1 and "not a checkpoint of rlfleet's trainer" in lines[0], result.err
        assert not marker.exists()
    assert not LocalCluster.all(workspace)  # deploy started no cluster
