"""The entry point, run as the platform runs it: a subprocess with the seed's arguments."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rlfleet.impala.checkpoint import load_checkpoint


def run_entry_point(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rlfleet.impala", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_one_process_run_prints_progress_and_checkpoints(tmp_path):
    config = {
        "num_workers": 0,
        "num_envs_per_worker": 8,
        "sample_batch_size": 10,
        "train_batch_size": 80,
        "min_time_s_per_iteration": 0.2,
    }
    completed = run_entry_point(
        "--run",
        "IMPALA",
        "--env",
        "CartPole-v1",
        "--config",
        json.dumps(config),
        "--stop",
        '{"training_iteration": 3, "time_total_s": 60}',
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    progress = [line for line in completed.stdout.splitlines() if line.startswith("iter")]
    assert len(progress) == 3
    assert "reward" in progress[0] and "steps/s" in progress[0] and "left" in progress[0]
    checkpoint = load_checkpoint(tmp_path / "ckpt" / "checkpoint_000003.pt")
    assert checkpoint.counters.training_iteration == 3

    resumed = run_entry_point(
        "--run",
        "IMPALA",
        "--env",
        "CartPole-v1",
        "--config",
        json.dumps(config),
        "--stop",
        '{"training_iteration": 4}',
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
        "--restore",
        str(tmp_path / "ckpt" / "checkpoint_000003.pt"),
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [
        line.split("|")[0].strip()
        for line in resumed.stdout.splitlines()
        if line.startswith("iter")
    ] == ["iter    4"]


@pytest.mark.parametrize(
    "config, stop, env, message",
    [
        ('{"num_workerz": 1}', "{}", "CartPole-v1", "unknown config key 'num_workerz'"),
        ("{}", '{"reward": 18}', "CartPole-v1", "unknown stop key 'reward'"),
        ('{"num_workers": 1', "{}", "CartPole-v1", "--config is not valid JSON"),
        ("{}", "{}", "Pogn-v4", "unknown environment 'Pogn-v4'"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, config, stop, env, message):
    completed = run_entry_point(
        "--run", "IMPALA", "--env", env, "--config", config, "--stop", stop, cwd=tmp_path
    )
    assert completed.returncode == 2
    assert message in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing started, nothing written
