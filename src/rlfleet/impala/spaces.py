"""What the trainer makes of an environment's spaces, decided once, before anything starts.

Observations become one array per step: a ``Box`` as it is (uint8 ``HxWxC`` images are turned
``CxHxW`` for the vision networks), ``Discrete`` one-hot, ``MultiDiscrete``/``MultiBinary``/
``Dict``/``Tuple`` flattened with Gymnasium's ``flatten`` (the order Gymnasium documents), all
through plain Gymnasium wrappers, so an exported policy's user can rebuild the same
observations. Actions: ``Discrete``, ``MultiDiscrete`` and ``Box`` (see :class:`ActionSpec`).
Any other space is refused with :class:`UnsupportedSpaceError`, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

ACTION_KINDS = ("discrete", "multi_discrete", "box")


class UnsupportedSpaceError(ValueError):
    """An observation or action space the trainer cannot learn with."""


@dataclass(frozen=True)
class ActionSpec:
    """The action space, as plain data (it goes into checkpoints and exported metadata)."""

    kind: str
    """discrete, multi_discrete (one categorical per entry of nvec) or box (a diagonal
    Gaussian; actions are clipped to [low, high] when stepping)."""
    shape: tuple[int, ...]
    """Shape of one action: () discrete, (K,) multi_discrete, (D,) box."""
    n: int = 0
    """Number of actions (discrete)."""
    nvec: tuple[int, ...] = ()
    """Choices per entry (multi_discrete)."""
    low: tuple[float, ...] = ()
    """Lower bounds, flattened (box)."""
    high: tuple[float, ...] = ()
    """Upper bounds, flattened (box)."""

    @property
    def num_outputs(self) -> int:
        """Width of the policy head: logits, concatenated logits, or the Gaussian's mean."""
        if self.kind == "discrete":
            return self.n
        if self.kind == "multi_discrete":
            return int(sum(self.nvec))
        return int(np.prod(self.shape))

    @property
    def dtype(self) -> np.dtype:
        """The dtype actions are stored in: int64, or float32 for box."""
        return np.dtype(np.float32 if self.kind == "box" else np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionSpec:
        tuples = ("shape", "nvec", "low", "high")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})

    def for_env(self, actions: np.ndarray) -> np.ndarray:
        """Actions as the environment takes them: box actions clipped to the bounds (the
        policy's log-probabilities are of the unclipped sample), reshaped to the space."""
        if self.kind != "box":
            return actions
        low = np.asarray(self.low, np.float32)
        high = np.asarray(self.high, np.float32)
        return np.clip(actions, low, high).reshape(*actions.shape[:-1], *self.shape)


def action_spec(space: gymnasium.Space) -> ActionSpec:
    """The :class:`ActionSpec` of ``space``.

    Raises:
        UnsupportedSpaceError: not Discrete, MultiDiscrete or a bounded float Box.
    """
    if isinstance(space, spaces.Discrete):
        if space.start != 0:
            raise UnsupportedSpaceError(
                f"action space {space} starts at {space.start}; the trainer needs Discrete "
                "actions that start at 0"
            )
        return ActionSpec("discrete", (), n=int(space.n))
    if isinstance(space, spaces.MultiDiscrete):
        if space.nvec.ndim != 1 or np.any(space.start != 0):
            raise UnsupportedSpaceError(
                f"action space {space} is not supported: MultiDiscrete actions must be 1-D and "
                "start at 0"
            )
        return ActionSpec("multi_discrete", (len(space.nvec),), nvec=tuple(map(int, space.nvec)))
    if isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating):
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise UnsupportedSpaceError(
                f"action space {space} is unbounded; give the Box finite low and high bounds"
            )
        return ActionSpec(
            "box",
            tuple(space.shape),
            low=tuple(map(float, space.low.flatten())),
            high=tuple(map(float, space.high.flatten())),
        )
    raise UnsupportedSpaceError(
        f"action space {space} ({type(space).__name__}) is not supported; the trainer takes "
        "Discrete, MultiDiscrete or a float Box"
    )


def is_image(space: gymnasium.Space) -> bool:
    """A uint8 Box of shape (H, W, C) with C <= 4 and H, W >= 8: an image, channels last."""
    return (
        isinstance(space, spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and space.shape[-1] <= 4
        and min(space.shape[:2]) >= 8
    )


def observation_wrappers(space: gymnasium.Space) -> list[Callable[[gymnasium.Env], gymnasium.Env]]:
    """The Gymnasium wrappers (outermost last) that make ``space``'s observations one array.

    Raises:
        UnsupportedSpaceError: a space with no fixed-size array form (Text, Graph, Sequence...).
    """
    if is_image(space):
        return [channels_first]
    if isinstance(space, spaces.Box):
        if not (np.issubdtype(space.dtype, np.number) or space.dtype == np.bool_):
            raise UnsupportedSpaceError(f"observation space {space} does not hold numbers")
        return []
    if isinstance(space, spaces.Discrete | spaces.MultiDiscrete | spaces.MultiBinary):
        return [gymnasium.wrappers.FlattenObservation]
    if isinstance(space, spaces.Dict | spaces.Tuple):
        for part in space.spaces.values() if isinstance(space, spaces.Dict) else space.spaces:
            observation_wrappers(part)  # raises for a part with no array form
        return [gymnasium.wrappers.FlattenObservation]
    raise UnsupportedSpaceError(
        f"observation space {space} ({type(space).__name__}) is not supported; the trainer "
        "takes Box, Discrete, MultiDiscrete, MultiBinary, and Dict or Tuple of those"
    )


def channels_first(env: gymnasium.Env) -> gymnasium.Env:
    """Images ``(H, W, C)`` as ``(C, H, W)``, what the vision networks take."""
    h, w, c = env.observation_space.shape
    low = np.moveaxis(env.observation_space.low, -1, 0)
    high = np.moveaxis(env.observation_space.high, -1, 0)
    space = spaces.Box(low, high, (c, h, w), np.uint8)
    return gymnasium.wrappers.TransformObservation(
        env, lambda obs: np.ascontiguousarray(np.moveaxis(obs, -1, 0)), space
    )


def wrap_observations(env: gymnasium.Env) -> gymnasium.Env:
    """``env`` with :func:`observation_wrappers` applied."""
    for wrapper in observation_wrappers(env.observation_space):
        env = wrapper(env)
    return env
