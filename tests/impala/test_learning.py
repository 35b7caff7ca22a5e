"""Learning is tested by learning: CartPole-v1 to a mean reward of 150, in one process and with
Ray actors. Settings: a small tanh MLP, 32 envs per worker, rollouts of 20 steps, Adam 1e-3."""

from __future__ import annotations

import os

import pytest
import ray

from rlfleet.impala.actors import RaySampler, cluster_has_worker_nodes
from rlfleet.impala.config import ImpalaConfig, StopConfig
from rlfleet.impala.loop import ImpalaTrainer, train
from rlfleet.impala.presets import CARTPOLE

GOAL = StopConfig(episode_reward_mean=150, time_total_s=60)


def test_cartpole_learns_in_one_process():
    config = ImpalaConfig.from_dict({**CARTPOLE, "num_workers": 0})
    result = train("CartPole-v1", config, GOAL)
    assert result["episode_reward_mean"] >= 150, result
    assert result["time_total_s"] < 60


@pytest.fixture
def local_ray(monkeypatch):
    """A private 2-CPU Ray instance whose only node is labelled as a platform worker node."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, labels={"rlfleet/role": "worker"}
    )
    yield
    ray.shutdown()


def test_cartpole_learns_with_ray_actors(local_ray):
    assert cluster_has_worker_nodes()
    config = ImpalaConfig.from_dict({**CARTPOLE, "num_workers": 2})
    trainer = ImpalaTrainer("CartPole-v1", config)
    try:
        assert isinstance(trainer.sampler, RaySampler)
        actor_pids = {
            ray.get(actor.__ray_call__.remote(lambda self: os.getpid()))
            for actor in trainer.sampler.actors
        }
        assert len(actor_pids) == 2 and os.getpid() not in actor_pids
        result = {}
        while not GOAL.reached(result):
            result = trainer.train_iteration(GOAL)
    finally:
        trainer.close()
    assert result["episode_reward_mean"] >= 150, result
