from __future__ import annotations

import math

import pytest

from rlfleet.impala.config import (
    ConfigError,
    ImpalaConfig,
    PPOConfig,
    StopConfig,
    config_class,
    parse_json_object,
)

SEED_CONFIG = (
    '{"num_gpus": 1, "num_workers": 13, "sample_batch_size": 50, "train_batch_size": 1000,'
    ' "num_sgd_iter": 2, "num_data_loader_buffers": 2, "model": {"dim": 42}}'
)
SEED_STOP = '{"episode_reward_mean": 18, "time_total_s": 3600}'


def test_seed_arguments_parse():
    config = ImpalaConfig.from_dict(parse_json_object(SEED_CONFIG, what="config"))
    stop = StopConfig.from_dict(parse_json_object(SEED_STOP, what="stop"))

    assert (config.num_gpus, config.num_workers, config.sample_batch_size) == (1.0, 13, 50)
    assert (config.train_batch_size, config.num_sgd_iter, config.num_data_loader_buffers) == (
        1000,
        2,
        2,
    )
    assert config.model.dim == 42
    assert isinstance(stop.episode_reward_mean, float) and stop.episode_reward_mean == 18.0
    assert stop.time_total_s == 3600 and stop.timesteps_total is None


@pytest.mark.parametrize(
    "data, key",
    [
        ({"num_wokers": 2}, "num_wokers"),
        ({"model": {"dim": 42, "conv_filterz": []}}, "conv_filterz"),
    ],
)
def test_unknown_config_key_is_an_error_naming_it(data, key):
    with pytest.raises(ConfigError, match=f"unknown .*key '{key}'") as error:
        ImpalaConfig.from_dict(data)
    assert "\n" not in str(error.value)


def test_unknown_stop_key_is_an_error_naming_it():
    with pytest.raises(ConfigError, match="unknown stop key 'episode_reward'"):
        StopConfig.from_dict({"episode_reward": 18})


@pytest.mark.parametrize("text", ['{"num_workers": 2', "{num_workers: 2}", "[1, 2]", "18"])
def test_malformed_json_is_a_one_line_error(text):
    with pytest.raises(ConfigError, match="--config") as error:
        parse_json_object(text, what="config")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"num_workers": "13"}, "num_workers"),
        ({"lr": "fast"}, "lr"),
        ({"num_workers": True}, "num_workers"),
        ({"model": {"fcnet_hiddens": [64, "x"]}}, "fcnet_hiddens"),
    ],
)
def test_wrong_types_name_the_key(data, key):
    with pytest.raises(ConfigError, match=key):
        ImpalaConfig.from_dict(data)


def test_out_of_range_values_are_rejected():
    with pytest.raises(ConfigError, match="sample_batch_size"):
        ImpalaConfig.from_dict({"sample_batch_size": 0})
    with pytest.raises(ConfigError, match="optimizer"):
        ImpalaConfig.from_dict({"optimizer": "sgd"})
    with pytest.raises(ConfigError, match=r"model\.fcnet_activation"):
        PPOConfig.from_dict({"model": {"fcnet_activation": "gelu"}})


def test_config_round_trips_through_a_plain_dict():
    config = ImpalaConfig.from_dict({"lr": 1e-3, "model": {"dim": 42}, "env_config": {"a": 1}})
    assert ImpalaConfig.from_dict(config.to_dict()) == config


def test_stop_reached_takes_the_first_criterion_met():
    stop = StopConfig(episode_reward_mean=18, time_total_s=3600, timesteps_total=1000)
    assert stop.reached({"episode_reward_mean": math.nan, "time_total_s": 10}) is None
    assert stop.reached({"episode_reward_mean": 18.5, "time_total_s": 10}) == "episode_reward_mean"
    assert stop.reached({"episode_reward_mean": 1, "timesteps_total": 1000}) == "timesteps_total"
    assert StopConfig().reached({"time_total_s": 1e9}) is None


def test_presets_are_valid_configs():
    from rlfleet.impala import presets

    assert ImpalaConfig.from_dict(presets.PONG_2CPU).model.network == "fast42"
    assert ImpalaConfig.from_dict(presets.CARTPOLE).num_envs_per_worker == 32


def test_pong_without_config_on_a_small_cpu_machine_gets_the_preset():
    from rlfleet.impala.presets import ATARI_2CPU, PONG_2CPU, default_config

    assert default_config("PongNoFrameskip-v4", cpus=2, gpus=0) == PONG_2CPU
    assert default_config("ALE/Pong-v5", cpus=4, gpus=0) == PONG_2CPU
    assert default_config("PongNoFrameskip-v4", cpus=2, gpus=1) == {}
    assert default_config("PongNoFrameskip-v4", cpus=16, gpus=0) == {}
    assert default_config("ALE/Breakout-v5", cpus=2, gpus=0) == ATARI_2CPU  # tuned for speed
    assert default_config("PongNoFrameskip-v4", run="PPO", cpus=2, gpus=0) == {}
    assert default_config("CartPole-v1", cpus=2, gpus=0) == {}
    assert default_config("NoSuchEnv-v0", cpus=2, gpus=0) == {}


def test_ppo_presets_for_mujoco_and_cartpole():
    from rlfleet.impala.presets import (
        PPO_CARTPOLE,
        PPO_HALFCHEETAH,
        PPO_MUJOCO,
        default_config,
    )

    for env_id in ("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5"):
        preset = PPO_HALFCHEETAH if env_id == "HalfCheetah-v5" else PPO_MUJOCO
        assert default_config(env_id, run="PPO", cpus=2, gpus=0) == preset
        assert default_config(env_id, run="IMPALA", cpus=2, gpus=0) == {}
    assert PPOConfig.from_dict(PPO_HALFCHEETAH).model.initial_log_std == -1.0
    assert default_config("CartPole-v1", run="PPO", cpus=2, gpus=0) == PPO_CARTPOLE
    assert default_config("Pendulum-v1", run="PPO", cpus=2, gpus=0) == {}
    assert PPOConfig.from_dict(PPO_MUJOCO).normalize_observations
    assert PPOConfig.from_dict(PPO_CARTPOLE).num_sgd_iter == 4


@pytest.mark.parametrize("run", ["IMPALA", "APPO", "PPO"])
def test_every_algorithms_config_documents_each_field_and_refuses_others(run):
    import dataclasses
    import inspect

    cls = config_class(run)
    source = "".join(inspect.getsource(c) for c in cls.__mro__ if c is not object)
    for field in (f.name for f in dataclasses.fields(cls)):
        assert f"{field}:" in source
        declared = source.split(f"    {field}:", 1)[1].splitlines()
        assert declared[1].strip().startswith('"""'), f"{field} has no help text"
    with pytest.raises(ConfigError, match="unknown config key 'gae_lambdaa'"):
        cls.from_dict({"gae_lambdaa": 0.9})


def test_algorithms_differ_in_their_own_keys_and_defaults():
    assert "gae_lambda" in PPOConfig().to_dict() and "gae_lambda" not in ImpalaConfig().to_dict()
    with pytest.raises(ConfigError, match="unknown config key 'vtrace_lambda'"):
        PPOConfig.from_dict({"vtrace_lambda": 1.0})
    appo = config_class("APPO")()
    assert appo.clip_param > 0 and appo.normalize_advantages and ImpalaConfig().clip_param == 0
    assert PPOConfig(num_workers=3).rollouts_per_batch() == 3  # one rollout from each actor
    with pytest.raises(ConfigError, match="not built in"):
        config_class("DQN")
    with pytest.raises(ConfigError, match="clip_param"):
        PPOConfig.from_dict({"clip_param": 0})
