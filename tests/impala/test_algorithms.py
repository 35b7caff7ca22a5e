"""Learning is tested by learning, for every algorithm and action space: PPO on CartPole-v1 to
475 (CleanRL's bar for it), and small problems of continuous (Box), Dict-observation and
MultiDiscrete kinds, written as a user's own module, with PPO, APPO and IMPALA."""

from __future__ import annotations

import sys

import gymnasium
import pytest
import ray
from toy_envs import write_toy_envs

from rlfleet.impala.actors import RaySampler
from rlfleet.impala.config import StopConfig, config_class
from rlfleet.impala.loop import Trainer, train
from rlfleet.impala.presets import PPO_CARTPOLE


def test_ppo_reaches_475_on_cartpole_in_one_process():
    """Within a budget of agent steps, not seconds (a busy machine takes longer, not more
    steps): 475 came at ~350k steps, about 26 s here (2026-12-06)."""
    config = config_class("PPO").from_dict({**PPO_CARTPOLE, "num_workers": 0})
    stop = StopConfig(episode_reward_mean=475, timesteps_total=500_000)
    result = train("CartPole-v1", config, stop)
    assert result["episode_reward_mean"] >= 475, result


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    """The toy environments, importable as the user's module ``toyenvs``; yields the folder."""
    folder = write_toy_envs(tmp_path / "user")
    monkeypatch.syspath_prepend(folder)
    yield folder
    for name in [m for m in sys.modules if m.startswith("toyenvs")]:
        del sys.modules[name]
    gymnasium.registry.pop("Target-v0", None)


TARGET = {"num_workers": 0, "num_envs_per_worker": 16, "sample_batch_size": 32}


@pytest.mark.parametrize(
    ("run", "config", "budget"),
    [
        ("PPO", {"lr": 3e-3, "num_sgd_iter": 8}, 150_000),  # 14k steps to -0.5 (2 seeds)
        ("APPO", {"lr": 3e-3, "train_batch_size": 512}, 300_000),  # 54k
        (
            "IMPALA",
            {"lr": 1e-2, "train_batch_size": 512, "reward_clip": 0, "normalize_advantages": True},
            300_000,  # 65k; with lr 3e-3 and raw advantages, 330k
        ),
    ],
)
def test_a_gaussian_policy_learns_continuous_actions(user_code, run, config, budget):
    """Target: say the target in [-1, 1] ten times; a random policy scores about -6. Budgets
    in agent steps (not seconds), about 5x what two seeds took, so a slow machine passes too."""
    cfg = config_class(run).from_dict(
        {**TARGET, "min_time_s_per_iteration": 1, "entropy_coeff": 0.0, **config}
    )
    result = train(
        "toyenvs:Target", cfg, StopConfig(episode_reward_mean=-0.5, timesteps_total=budget)
    )
    assert result["episode_reward_mean"] >= -0.5, result
    assert result["action_std_mean"] < 0.5  # the policy narrowed its Gaussian


def test_multi_discrete_actions_and_dict_observations_learn(user_code):
    """Match: name both parts of a Dict observation with a MultiDiscrete action (16 at best,
    a random policy 5.3)."""
    cfg = config_class("PPO").from_dict(
        {**TARGET, "lr": 3e-3, "min_time_s_per_iteration": 1, "entropy_coeff": 0.0}
    )
    stop = StopConfig(episode_reward_mean=14, timesteps_total=200_000)
    result = train("toyenvs:Match", cfg, stop)
    assert result["episode_reward_mean"] >= 14, result


def test_ppo_with_ray_actors_samples_every_batch_with_the_learners_weights(user_code, monkeypatch):
    """The actors import the user's module from Ray's working_dir, as in a platform run."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"working_dir": user_code},
    )
    try:
        cfg = config_class("PPO").from_dict(
            {
                **TARGET,
                "num_workers": 2,
                "num_cpus_per_worker": 0.5,
                "num_envs_per_worker": 8,
                "train_batch_size": 4 * 8 * 32,  # two rollouts from each actor per update
                "lr": 3e-3,
                "entropy_coeff": 0.0,
                "min_time_s_per_iteration": 1,
            }
        )
        trainer = Trainer("toyenvs:Target", cfg)
        try:
            assert isinstance(trainer.sampler, RaySampler) and trainer.sampler.synchronous
            result = {}
            stop = StopConfig(episode_reward_mean=-0.5, timesteps_total=200_000)
            while not stop.reached(result):
                result = trainer.train_iteration(stop)
                assert result["policy_lag"] == 0  # synchronous: no rollout of old weights
            assert result["episode_reward_mean"] >= -0.5, result
            assert result["num_learner_updates"] * 4 * 8 * 32 == result["timesteps_total"]
        finally:
            trainer.close()
    finally:
        ray.shutdown()
