"""A CartPole policy trained in the test suite, through the platform, for the deploy tests."""

from __future__ import annotations

import json

import pytest

from rlfleet import Run, RunStatus
from rlfleet.train import submit_training

CARTPOLE = {
    "num_workers": 1,
    "num_envs_per_worker": 32,
    "sample_batch_size": 20,
    "train_batch_size": 640,
    "lr": 0.001,
    "min_time_s_per_iteration": 1,
}


@pytest.fixture(scope="session")
def trained_run(warm_workspace) -> Run:
    run = submit_training(
        warm_workspace,
        env="CartPole-v1",
        config=json.dumps(CARTPOLE),
        stop='{"episode_reward_mean": 300, "time_total_s": 150}',
        experiment="deploy-tests",
    )
    assert run.wait_for_completion(timeout_s=400) is RunStatus.COMPLETED, run.to_dict()["error"]
    assert run.get_metric_history("episode_reward_mean")[-1].value >= 300
    return run
