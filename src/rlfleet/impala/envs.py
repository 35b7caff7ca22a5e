"""Environment registry: an id becomes a batched (vector) environment.

Lookup order for an id: factories registered with :func:`register_env`, then Gymnasium's
registry. Gymnasium ids whose entry point is ALE's ``AtariEnv`` (``PongNoFrameskip-v4``,
``ALE/Pong-v5``, ...) are stepped by ``ale_py.vector_env.AtariVectorEnv`` in native threads with
the standard Atari preprocessing; every other Gymnasium id goes through ``gymnasium.make_vec``.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ale_py
import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

logger = logging.getLogger(__name__)

gymnasium.register_envs(ale_py)


class UnknownEnvironmentError(ValueError):
    """The environment id is neither registered here nor in Gymnasium."""


@dataclass(frozen=True)
class EnvSettings:
    """What a factory needs to build a vector environment."""

    env_id: str
    """The id asked for (e.g. PongNoFrameskip-v4)."""
    num_envs: int
    """Sub-environments stepped together."""
    dim: int = 84
    """Side of square image observations (Atari)."""
    num_threads: int = 0
    """Native stepping threads (Atari); 0 lets the library choose."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments (the run's env_config)."""


VectorEnvFactory = Callable[[EnvSettings], VectorEnv]
_FACTORIES: dict[str, VectorEnvFactory] = {}


def register_env(env_id: str, factory: VectorEnvFactory) -> None:
    """Make ``env_id`` build its vector environment with ``factory`` (overrides Gymnasium)."""
    _FACTORIES[env_id] = factory


def make_vector_env(
    env_id: str,
    *,
    num_envs: int,
    seed: int | None = None,
    dim: int = 84,
    num_threads: int = 0,
    options: dict[str, Any] | None = None,
) -> tuple[VectorEnv, Any]:
    """Build and reset the vector env for ``env_id``; returns ``(env, first_observations)``.

    Raises:
        UnknownEnvironmentError: ``env_id`` is not known here nor to Gymnasium.
    """
    settings = EnvSettings(env_id, num_envs, dim, num_threads, dict(options or {}))
    env = resolve_factory(env_id)(settings)
    observations, _ = env.reset(seed=seed)
    return env, observations


def autoreset_mode(env: VectorEnv) -> AutoresetMode:
    """How ``env`` resets finished sub-environments (NextStep when it does not say)."""
    return AutoresetMode(env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP))


def resolve_factory(env_id: str) -> VectorEnvFactory:
    """The factory that builds ``env_id``.

    Raises:
        UnknownEnvironmentError: ``env_id`` is not known here nor to Gymnasium.
    """
    if env_id in _FACTORIES:
        return _FACTORIES[env_id]
    try:
        spec = gymnasium.spec(env_id)
    except gymnasium.error.Error:
        raise UnknownEnvironmentError(_unknown_message(env_id)) from None
    if spec.entry_point in ("ale_py.env:AtariEnv", ale_py.env.AtariEnv):
        return make_atari
    return make_gymnasium


def make_atari(settings: EnvSettings) -> VectorEnv:
    """AtariVectorEnv with the standard preprocessing: frame skip 4 with max-pool, grayscale,
    resize to ``dim``, 4-frame stack, up to 30 no-op resets; rewards stay raw (the learner
    clips them) so that episode scores are the game's.

    ``env_config`` keys go to AtariVectorEnv, except ``downsample``: ``"area"`` (the default)
    resizes each frame straight to ``dim``; ``"max2"`` resizes to ``2 * dim`` and keeps the
    brightest pixel of each 2x2 block, so that objects smaller than a pixel at ``dim`` (Pong's
    ball at 42x42) keep their full contrast instead of being averaged into the background.
    """
    from ale_py.vector_env import AtariVectorEnv

    options = dict(settings.options)
    downsample = options.pop("downsample", "area")
    if downsample not in DOWNSAMPLING:
        raise ValueError(f"env_config.downsample must be one of {DOWNSAMPLING}, not {downsample!r}")
    side = settings.dim * (2 if downsample == "max2" else 1)
    spec_kwargs = gymnasium.spec(settings.env_id).kwargs
    kwargs: dict[str, Any] = {
        "repeat_action_probability": spec_kwargs.get("repeat_action_probability", 0.0),
        "full_action_space": spec_kwargs.get("full_action_space", False),
        "max_num_frames_per_episode": spec_kwargs.get("max_num_frames_per_episode", 108_000),
        "img_height": side,
        "img_width": side,
        "num_threads": settings.num_threads,
        "frameskip": 4,
        "stack_num": 4,
        "noop_max": 30,
        "reward_clipping": False,
        "episodic_life": False,
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }
    kwargs.update(options)
    env = AtariVectorEnv(spec_kwargs["game"], settings.num_envs, **kwargs)
    return MaxPool2x2(env) if downsample == "max2" else env


DOWNSAMPLING = ("area", "max2")


class MaxPool2x2(VectorWrapper):
    """Halves the side of ``(N, C, H, W)`` uint8 frames, keeping the maximum of each 2x2 block.

    (Not a VectorObservationWrapper: that refuses SameStep autoreset, whose final observations
    in ``info`` it would leave unpooled; nothing here reads them.)
    """

    def __init__(self, env: VectorEnv) -> None:
        super().__init__(env)
        n, c, h, w = env.observation_space.shape
        self.single_observation_space = gymnasium.spaces.Box(0, 255, (c, h // 2, w // 2), np.uint8)
        self.observation_space = gymnasium.spaces.Box(0, 255, (n, c, h // 2, w // 2), np.uint8)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        observations, infos = self.env.reset(**kwargs)
        return self.observations(observations), infos

    def step(self, actions: Any) -> tuple[Any, ...]:
        observations, *rest = self.env.step(actions)
        return (self.observations(observations), *rest)

    def observations(self, observations: np.ndarray) -> np.ndarray:
        o = observations
        top = np.maximum(o[..., 0::2, 0::2], o[..., 0::2, 1::2])
        return np.maximum(top, np.maximum(o[..., 1::2, 0::2], o[..., 1::2, 1::2]), out=top)


def make_gymnasium(settings: EnvSettings) -> VectorEnv:
    """Gymnasium's own vector env: its native one when the id has it, else SyncVectorEnv."""
    spec = gymnasium.spec(settings.env_id)
    if spec.vector_entry_point is not None:
        return gymnasium.make_vec(
            settings.env_id,
            num_envs=settings.num_envs,
            vectorization_mode="vector_entry_point",
            **settings.options,
        )
    return gymnasium.make_vec(
        settings.env_id,
        num_envs=settings.num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        **settings.options,
    )


def _unknown_message(env_id: str) -> str:
    known = list(_FACTORIES) + list(gymnasium.registry)
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"unknown environment {env_id!r}: it is not a Gymnasium id (e.g. CartPole-v1), "
        f"an Atari id (e.g. ALE/Pong-v5, PongNoFrameskip-v4) or one registered with "
        f"rlfleet.impala.envs.register_env.{hint}"
    )
