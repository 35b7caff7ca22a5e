from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from rlfleet.impala.spaces import (
    ActionSpec,
    UnsupportedSpaceError,
    action_spec,
    is_image,
    observation_wrappers,
    wrap_observations,
)


def test_action_specs_of_the_supported_spaces_round_trip():
    discrete = action_spec(spaces.Discrete(4))
    multi = action_spec(spaces.MultiDiscrete([3, 2, 5]))
    box = action_spec(spaces.Box(-2.0, np.array([1.0, 3.0]), (2,), np.float32))
    assert (discrete.kind, discrete.shape, discrete.num_outputs) == ("discrete", (), 4)
    assert (multi.kind, multi.shape, multi.num_outputs) == ("multi_discrete", (3,), 10)
    assert (box.kind, box.shape, box.num_outputs) == ("box", (2,), 2)
    assert box.low == (-2.0, -2.0) and box.high == (1.0, 3.0)
    for spec in (discrete, multi, box):
        assert ActionSpec.from_dict(spec.to_dict()) == spec


def test_box_actions_are_clipped_to_the_bounds_for_the_env_only():
    box = action_spec(spaces.Box(-1.0, 1.0, (2, 2), np.float32))
    assert box.num_outputs == 4
    actions = np.array([[3.0, -0.5, -7.0, 0.25]], np.float32)
    stepped = box.for_env(actions)
    assert stepped.shape == (1, 2, 2)
    np.testing.assert_array_equal(stepped.reshape(1, 4), [[1.0, -0.5, -1.0, 0.25]])
    assert actions[0, 0] == 3.0  # what the policy sampled is kept as it was


@pytest.mark.parametrize(
    ("space", "fragment"),
    [
        (spaces.Text(5), "Text"),
        (spaces.Box(-np.inf, np.inf, (2,), np.float32), "unbounded"),
        (spaces.Discrete(3, start=1), "start at 0"),
        (spaces.Dict({"a": spaces.Discrete(2)}), "Dict"),
        (spaces.Box(0, 255, (2,), np.uint8), "Box"),
    ],
)
def test_unsupported_action_spaces_are_refused_by_name(space, fragment):
    with pytest.raises(UnsupportedSpaceError, match=fragment):
        action_spec(space)


class Observing(gymnasium.Env):
    """Returns samples of ``space`` as observations."""

    def __init__(self, space: gymnasium.Space) -> None:
        self.observation_space = space
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def test_discrete_observations_become_one_hot_and_dicts_flat():
    env = wrap_observations(Observing(spaces.Discrete(5)))
    obs, _ = env.reset(seed=1)
    assert obs.shape == (5,) and obs.sum() == 1
    nested = spaces.Dict(
        {"position": spaces.Box(-1, 1, (3,), np.float32), "mode": spaces.Discrete(2)}
    )
    env = wrap_observations(Observing(nested))
    obs, _ = env.reset(seed=1)
    assert env.observation_space.shape == obs.shape == (5,)
    assert obs.dtype == env.observation_space.dtype


def test_images_are_turned_channels_first_and_vectors_left_alone():
    image = spaces.Box(0, 255, (64, 48, 3), np.uint8)
    assert is_image(image)
    env = wrap_observations(Observing(image))
    obs, _ = env.reset(seed=0)
    raw = env.unwrapped.observation_space
    assert env.observation_space.shape == obs.shape == (3, 64, 48)
    assert env.observation_space.contains(obs) and raw.shape == (64, 48, 3)
    assert observation_wrappers(spaces.Box(-1, 1, (4, 4), np.float32)) == []
    assert not is_image(spaces.Box(0, 1, (64, 48, 3), np.float32))


def test_observation_spaces_without_an_array_form_are_refused():
    with pytest.raises(UnsupportedSpaceError, match="Text"):
        observation_wrappers(spaces.Text(10))
    with pytest.raises(UnsupportedSpaceError, match="Sequence"):
        observation_wrappers(spaces.Dict({"a": spaces.Sequence(spaces.Discrete(2))}))
