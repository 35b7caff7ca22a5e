"""``rlfleet train``: the built-in IMPALA trainer as a run, learning for real."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time

import psutil
import pytest
from support import cli_in_process, processes_with, wait_until

from rlfleet import RunStatus, Workspace
from rlfleet.train import submit_training


@pytest.mark.cluster
def test_cartpole_reaches_150_through_the_platform(trained_cartpole):
    """Default compute (a local head and a worker node, created for the run), actors on the
    worker node, learner on the head; learning is tested by learning: a mean reward of 150 in
    under 2 minutes from the submit (the run goes on to 300 for the deploy tests)."""
    run, shown = trained_cartpole.run, trained_cartpole.shown
    assert trained_cartpole.exit_code == 0, (shown["status"], shown["error"])
    assert shown["status"] == "COMPLETED"
    assert shown["name"] == "IMPALA CartPole-v1"  # named after what it trains
    assert shown["metrics"]["episode_reward_mean"] >= 300
    assert shown["compute"] == {
        "head": "head",
        "worker": "workers",
        "node_count": 1,
        "cluster": shown["compute"]["cluster"],
    }
    assert set(run.workspace.compute_targets) == {"head", "workers"}  # made for the run
    rewards = run.get_metric_history("episode_reward_mean")
    assert rewards[0].value < 150
    reached = next(point for point in rewards if point.value >= 150)
    submitted_ms = run.store.get_run(run.id).info.start_time
    assert (reached.timestamp - submitted_ms) / 1000 < 120, "150 took 2 minutes or more"
    for name in (
        "episodes_total",
        "timesteps_total",
        "time_total_s",
        "policy_loss",
        "vf_loss",
        "entropy",
        "grad_gnorm",
    ):
        assert name in shown["metrics"], name
    checkpoints = run.workspace.tracking.list_artifacts(run.id, "checkpoints")
    assert checkpoints and checkpoints[-1].endswith(".pt")
    assert list(run.get_child("worker").get_logs()) == ["worker-0_log.txt"]
    assert "'label_selector': {'rlfleet/role': 'worker'}" in run.driver_log()


@pytest.mark.cluster
def test_a_killed_driver_fails_the_run_and_resume_loses_no_point(warm_workspace):
    """The driver (the trainer) is SIGKILLed mid-run: the run is FAILED within seconds, and
    ``--resume`` goes on from the last checkpoint: every iteration up to it is logged once, and
    the resumed run starts right after it."""
    config = '{"num_workers": 1, "min_time_s_per_iteration": 1, "checkpoint_freq_s": 2}'
    first = submit_training(
        warm_workspace, env="CartPole-v1", config=config, stop='{"time_total_s": 300}'
    )

    def checkpoints() -> list[str]:
        return warm_workspace.tracking.list_artifacts(first.id, "checkpoints")

    def iterations(run) -> list[float]:
        return [p.value for p in run.get_metric_history("training_iteration")]

    assert wait_until(lambda: len(checkpoints()) >= 2, timeout=240, interval=0.5)
    drivers = processes_with("train_impala.py")
    assert drivers
    killed = time.monotonic()
    for driver in drivers:
        with contextlib.suppress(psutil.NoSuchProcess):  # it may end between the list and the kill
            driver.send_signal(signal.SIGKILL)
    assert first.wait_for_completion(timeout_s=60) is RunStatus.FAILED
    assert time.monotonic() - killed < 30
    logged = iterations(first)
    assert logged == [float(i) for i in range(1, len(logged) + 1)]  # none lost, none twice
    last = int(re.search(r"checkpoint_(\d+)\.pt", checkpoints()[-1]).group(1))
    assert 1 <= last <= len(logged)

    second = submit_training(
        warm_workspace, env=None, resume=first.id, stop=f'{{"training_iteration": {last + 2}}}'
    )
    assert second.wait_for_completion(timeout_s=240) is RunStatus.COMPLETED, second.to_dict()[
        "error"
    ]
    assert second.tags["rlfleet.resumed_from"] == first.id
    assert iterations(second) == [last + 1.0, last + 2.0]  # the counters go on
    steps = {p.step: p.value for p in first.get_metric_history("timesteps_total")}
    assert second.get_metric_history("timesteps_total")[0].value > steps[last]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["--env", "CartPole-v1", "--config", '{"num_wrokers": 2}'],
            "unknown config key 'num_wrokers'",
        ),
        (["--env", "CartPole-v1", "--config", '{"num_workers": 2'], "--config is not valid JSON"),
        (["--env", "CartPole-v1", "--stop", '{"reward": 18}'], "reward"),
        (["--env", "NoSuchGame-v9"], "unknown environment 'NoSuchGame-v9'"),
        (["--env", "CartPole-v1", "--run", "DQN"], "not built in"),
        (["--resume", "0123456789abcdef0123456789abcdef"], "no run with id"),
        (["--env", "CartPole-v1", "--head", "nope"], "no compute target named 'nope'"),
    ],
)
def test_bad_training_arguments_are_refused(tmp_path, args, fragment):
    ws = Workspace.init(tmp_path / "ws")
    result = cli_in_process("train", *args, workspace=ws.root)
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlfleet: error: "), result.err
    assert fragment in lines[0]
    assert json.loads(cli_in_process("runs", "list", "--json", workspace=ws.root).out) == []
    assert not list((ws.state_dir / "train").glob("*"))  # nothing left behind
