from __future__ import annotations

import sys

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from toy_envs import write_toy_envs

from rlfleet.impala import envs
from rlfleet.impala.envs import (
    UnknownEnvironmentError,
    UnsupportedEnvironmentError,
    autoreset_mode,
    check_env,
    make_vector_env,
)


def test_unknown_env_is_a_clear_one_line_error():
    with pytest.raises(UnknownEnvironmentError) as error:
        make_vector_env("PongNoFrameskip-v5", num_envs=2)
    message = str(error.value)
    assert "\n" not in message
    assert "unknown environment 'PongNoFrameskip-v5'" in message
    assert "PongNoFrameskip-v4" in message  # a suggestion of what to use instead


def test_pong_frames_are_stacked_grayscale_uint8():
    env, obs = make_vector_env("PongNoFrameskip-v4", num_envs=3, seed=0, dim=42, num_threads=1)
    try:
        assert obs.shape == (3, 4, 42, 42) and obs.dtype == np.uint8
        assert env.single_action_space.n == 6
        assert autoreset_mode(env) == AutoresetMode.SAME_STEP
        rewards = []
        for _ in range(300):
            obs, reward, _, _, _ = env.step(np.zeros(3, dtype=np.int64))
            rewards.append(reward)
        assert obs.shape == (3, 4, 42, 42) and obs.dtype == np.uint8
        assert obs.max() > obs.min()  # real frames, not blanks
        assert np.min(rewards) == -1  # the opponent scores: raw game rewards come through
    finally:
        env.close()


def test_default_atari_frames_are_84_and_v5_ids_work():
    env, obs = make_vector_env("ALE/Breakout-v5", num_envs=2, seed=0, num_threads=1)
    try:
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
        assert env.single_action_space.n == 4
    finally:
        env.close()


def test_classic_control_uses_gymnasium_vector_env():
    env, obs = make_vector_env("CartPole-v1", num_envs=5, seed=0)
    try:
        assert obs.shape == (5, 4) and obs.dtype == np.float32
        assert env.single_action_space.n == 2
    finally:
        env.close()


def test_registered_factories_take_precedence():
    def factory(settings: envs.EnvSettings) -> gymnasium.vector.VectorEnv:
        return gymnasium.make_vec("MountainCar-v0", num_envs=settings.num_envs)

    envs.register_env("MyCar-v0", factory)
    try:
        env, obs = make_vector_env("MyCar-v0", num_envs=2, seed=0)
        assert obs.shape == (2, 2)
        env.close()
    finally:
        envs._FACTORIES.pop("MyCar-v0")


def test_max2_downsampling_keeps_small_objects_at_full_contrast():
    """Pong's ball is smaller than a pixel at 42x42: area resizing dims it, max2 keeps it white."""
    area_env, _ = make_vector_env("PongNoFrameskip-v4", num_envs=1, seed=0, dim=42, num_threads=1)
    max_env, _ = make_vector_env(
        "PongNoFrameskip-v4",
        num_envs=1,
        seed=0,
        dim=42,
        num_threads=1,
        options={"downsample": "max2"},
    )
    try:
        assert max_env.single_observation_space.shape == (4, 42, 42)
        actions = np.zeros(1, dtype=np.int64)
        field = slice(8, 36)  # between the walls: paddles (~148 grey) and the ball (236 white)
        brightest_area, brightest_pooled = [], []
        for _ in range(100):
            area, *_ = area_env.step(actions)
            pooled, *_ = max_env.step(actions)
            brightest_area.append(area[0, -1, field].max())
            brightest_pooled.append(pooled[0, -1, field].max())
        assert pooled.shape == (1, 4, 42, 42) and pooled.dtype == np.uint8
        assert max(brightest_pooled) >= 225  # the ball, white
        assert max(brightest_area) < 200  # the same ball, averaged into the background
    finally:
        area_env.close()
        max_env.close()


def test_unknown_downsampling_is_refused():
    with pytest.raises(ValueError, match="downsample"):
        make_vector_env("PongNoFrameskip-v4", num_envs=1, options={"downsample": "bicubic"})


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    """The toy environments as a user's module, in a folder that is not on the import path
    (``check_env`` puts it there while it checks); cleaned from ``sys.modules`` after."""
    folder = write_toy_envs(tmp_path / "user")
    yield folder
    for name in [m for m in sys.modules if m.startswith("toyenvs")]:
        del sys.modules[name]
    for env_id in [i for i in gymnasium.registry if i.startswith("Target")]:
        del gymnasium.registry[env_id]


@pytest.mark.parametrize("env_id", ["toyenvs:Target", "toyenvs:make_target", "toyenvs:Target-v0"])
def test_user_classes_factories_and_registered_ids_pass_the_check(user_code, env_id):
    check_env(env_id, {"length": 3} if "-v0" not in env_id else {}, source_directory=user_code)
    assert user_code not in sys.path  # only while checking


@pytest.mark.parametrize(
    ("env_id", "env_config", "error", "fragment"),
    [
        ("nosuchmodule:Env", {}, UnknownEnvironmentError, "no module named 'nosuchmodule'"),
        ("toyenvs:Nothing", {}, UnknownEnvironmentError, "has no 'Nothing'"),
        ("toyenvs:NotAnEnv", {}, UnsupportedEnvironmentError, "not a gymnasium.Env"),
        ("toyenvs:TextActions", {}, UnsupportedEnvironmentError, "Text"),
        ("toyenvs:Target", {"colour": 1}, UnsupportedEnvironmentError, "could not be built"),
        ("Pendulum-v1", {"g": "heavy"}, UnsupportedEnvironmentError, "first reset or step"),
    ],
)
def test_bad_user_environments_are_refused_in_one_line(
    user_code, env_id, env_config, error, fragment
):
    with pytest.raises(error) as raised:
        check_env(env_id, env_config, source_directory=user_code)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_user_envs_are_vectorised_with_their_observations_made_arrays(user_code, monkeypatch):
    monkeypatch.syspath_prepend(user_code)
    env, obs = make_vector_env("toyenvs:Match", num_envs=3, seed=0)
    try:
        assert obs.shape == (3, 6) and obs.sum() == 6  # two one-hot parts each
        assert autoreset_mode(env) == AutoresetMode.SAME_STEP
        assert isinstance(env, gymnasium.vector.SyncVectorEnv)  # cheap steps: one process
    finally:
        env.close()
    env, obs = make_vector_env(
        "toyenvs:Target", num_envs=2, seed=0, num_threads=2, vectorization="async"
    )
    try:
        assert isinstance(env, gymnasium.vector.AsyncVectorEnv) and obs.shape == (2, 1)
        env.step(np.array([[0.5], [-0.5]], np.float32))
    finally:
        env.close()
