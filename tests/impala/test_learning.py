"""Learning is tested by learning: CartPole-v1 to a mean reward of 150, in one process and with
Ray actors. Settings: a small tanh MLP, 32 envs per worker, rollouts of 20 steps, Adam 1e-3."""

from __future__ import annotations

import os
import time

import psutil
import ray

from rlfleet.impala import actors
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


def test_cartpole_learns_with_ray_actors_and_counts_a_brief_loss(local_ray, monkeypatch):
    assert cluster_has_worker_nodes()
    config = ImpalaConfig.from_dict({**CARTPOLE, "num_workers": 2})
    trainer = ImpalaTrainer("CartPole-v1", config)
    try:
        sampler = trainer.sampler
        assert isinstance(sampler, RaySampler)
        actor_pids = {
            ray.get(actor.__ray_call__.remote(lambda self: os.getpid())) for actor in sampler.actors
        }
        assert len(actor_pids) == 2 and os.getpid() not in actor_pids
        result = {}
        while not GOAL.reached(result):
            result = trainer.train_iteration(GOAL)
        assert result["num_healthy_workers"] == 2 and result["num_worker_failures"] == 0

        # An actor dies and Ray restarts it at once (its CPU is free again): an outage far
        # shorter than an iteration, which the iteration's metrics must still show.
        ray.kill(sampler.actors[0], no_restart=False)
        deadline = time.monotonic() + 60
        while not (sampler.worker_failures == 1 and sampler.healthy_workers == 2):
            assert time.monotonic() < deadline, "the killed actor was not lost and back in 60 s"
            sampler.next_rollout()
        assert sampler.fewest_healthy_workers() == 1  # the low point, though both are back
        assert sampler.fewest_healthy_workers() == 2  # and from then on

        # An actor that stops delivering (its node cut off: Ray would not call it lost for
        # about a minute) counts as not healthy after STALL_MIN_S, and as healthy once it
        # delivers again; the other one goes on meanwhile.
        monkeypatch.setattr(actors, "STALL_MIN_S", 2.0)
        stalled = psutil.Process(
            ray.get(sampler.actors[1].__ray_call__.remote(lambda self: os.getpid()))
        )
        stalled.suspend()
        try:
            deadline = time.monotonic() + 30
            while sampler.healthy_workers == 2:
                assert time.monotonic() < deadline, "a silent actor still counts as healthy"
                sampler.next_rollout()
            assert sampler.fewest_healthy_workers() == 1 and sampler.worker_failures == 1
        finally:
            stalled.resume()
        deadline = time.monotonic() + 30
        while sampler.healthy_workers == 1:
            assert time.monotonic() < deadline, "the actor delivers again but is not counted"
            sampler.next_rollout()
        assert sampler.worker_failures == 1  # not lost: it just delivered late
    finally:
        trainer.close()
    assert result["episode_reward_mean"] >= 150, result
