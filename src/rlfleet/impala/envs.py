"""Environment registry: an id becomes a batched (vector) environment.

Lookup order for an id: factories registered with :func:`register_env`; the user's own code in
the ``module:name`` form, where ``name`` is a class or function of ``module`` that makes a
``gymnasium.Env`` (its keyword arguments: the run's ``env_config``) or a Gymnasium id that
importing ``module`` registers (Gymnasium's own ``module:id`` form); then Gymnasium's registry.
Gymnasium ids whose entry point is ALE's ``AtariEnv`` (``PongNoFrameskip-v4``, ``ALE/Pong-v5``,
...) are stepped by ``ale_py.vector_env.AtariVectorEnv`` in native threads with the standard
Atari preprocessing; every other environment goes through Gymnasium's vector envs, its
observations made one array by :mod:`rlfleet.impala.spaces`. :func:`check_env` builds one
environment and steps it once, so that a bad ``--env`` is refused before anything starts.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ale_py
import gymnasium
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv, VectorWrapper

from rlfleet.impala.spaces import (
    UnsupportedSpaceError,
    action_spec,
    observation_wrappers,
    wrap_observations,
)

logger = logging.getLogger(__name__)

gymnasium.register_envs(ale_py)


class UnknownEnvironmentError(ValueError):
    """The environment id is neither registered here nor in Gymnasium, nor the user's code."""


class UnsupportedEnvironmentError(ValueError):
    """The environment exists but cannot be trained: it is not a ``gymnasium.Env``, it fails to
    build or step, or its spaces are not supported."""


VECTORIZATION_MODES = ("auto", "sync", "async")

ASYNC_MIN_STEP_S = 0.001
"""``auto`` steps environments in subprocesses (AsyncVectorEnv) when one step of one
environment takes at least this long (and the worker has more than one CPU); cheaper steps
cost less in one process than the pipes between processes."""


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
    vectorization: str = "auto"
    """How Gymnasium environments are stepped together: sync (in this process), async (one
    subprocess each) or auto (async when a step is costly, see ASYNC_MIN_STEP_S)."""


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
    vectorization: str = "auto",
) -> tuple[VectorEnv, Any]:
    """Build and reset the vector env for ``env_id``; returns ``(env, first_observations)``.

    Raises:
        UnknownEnvironmentError: ``env_id`` is not known here nor to Gymnasium.
    """
    settings = EnvSettings(env_id, num_envs, dim, num_threads, dict(options or {}), vectorization)
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
    if ":" in env_id and _user_callable(env_id) is not None:
        return make_gymnasium
    try:
        spec = gymnasium.spec(registered_id(env_id))
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
    spec_kwargs = gymnasium.spec(registered_id(settings.env_id)).kwargs
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
    """Gymnasium's vector env: the id's native one when it has one and its observations need
    no wrapper (CartPole), else Sync- or AsyncVectorEnv of :func:`make_env` environments."""
    user = _user_callable(settings.env_id)
    spec = None if user else gymnasium.spec(registered_id(settings.env_id))
    if spec is not None and spec.vector_entry_point is not None:
        env = gymnasium.make_vec(
            settings.env_id,
            num_envs=settings.num_envs,
            vectorization_mode="vector_entry_point",
            **settings.options,
        )
        if not observation_wrappers(env.single_observation_space):
            return env
        env.close()

    def make_one() -> gymnasium.Env:
        return make_env(settings.env_id, settings.options)

    mode = settings.vectorization
    if mode == "auto":
        mode = (
            "async"
            if settings.num_threads > 1 and step_seconds(make_one) >= ASYNC_MIN_STEP_S
            else "sync"
        )
    vector = AsyncVectorEnv if mode == "async" else SyncVectorEnv
    return vector([make_one] * settings.num_envs, autoreset_mode=AutoresetMode.SAME_STEP)


def step_seconds(make_one: Callable[[], gymnasium.Env], steps: int = 20) -> float:
    """Mean seconds of one step of one environment, with random actions."""
    env = make_one()
    try:
        env.reset(seed=0)
        env.action_space.seed(0)
        start = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        return (time.perf_counter() - start) / steps
    finally:
        env.close()


def make_env(
    env_id: str, options: Mapping[str, Any] | None = None, *, render_mode: str | None = None
) -> gymnasium.Env:
    """One (non-Atari) environment, its observations as the trainer sees them.

    Raises:
        UnknownEnvironmentError: ``env_id`` names no environment.
        UnsupportedEnvironmentError: what it names does not make a ``gymnasium.Env``.
        UnsupportedSpaceError: its observations have no array form.
    """
    options = dict(options or {})
    if render_mode is not None:
        options["render_mode"] = render_mode
    maker = _user_callable(env_id)
    if maker is None:
        env = gymnasium.make(env_id, **options)
    else:
        env = maker(**options)
        if not isinstance(env, gymnasium.Env):
            raise UnsupportedEnvironmentError(
                f"--env {env_id!r} made a {type(env).__name__}, not a gymnasium.Env; name a "
                "gymnasium.Env subclass or a function that returns one"
            )
    return wrap_observations(env)


def registered_id(env_id: str) -> str:
    """The Gymnasium id of ``env_id``: ``module:Id-v0`` is ``Id-v0`` once ``module`` is
    imported (:func:`_user_callable` imports it)."""
    _user_callable(env_id)
    return env_id.split(":", 1)[1] if ":" in env_id else env_id


def _user_callable(env_id: str) -> Callable[..., Any] | None:
    """The class or function ``module:name`` names, or None when ``name`` is a Gymnasium id
    (or there is no ``:``).

    Raises:
        UnknownEnvironmentError: the module cannot be imported, or has no such name and
            registers no such Gymnasium id.
    """
    if ":" not in env_id:
        return None
    module_name, name = env_id.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name + ".").startswith(error.name + "."):
            raise UnknownEnvironmentError(
                f"--env {env_id!r}: no module named {module_name!r}; put it in the folder "
                "given with --source-directory"
            ) from None
        raise UnknownEnvironmentError(
            f"--env {env_id!r}: module {module_name!r} imports {error.name!r}, which is not "
            "installed; add it with --pip-package"
        ) from None
    except Exception as error:
        raise UnsupportedEnvironmentError(
            f"--env {env_id!r}: importing {module_name!r} failed: {_one_line(error)}"
        ) from None
    target = getattr(module, name, None)
    if target is not None:
        if isinstance(target, type) and not issubclass(target, gymnasium.Env):
            raise UnsupportedEnvironmentError(
                f"--env {env_id!r}: {name} is a class but not a gymnasium.Env subclass"
            )
        if not callable(target):
            raise UnsupportedEnvironmentError(
                f"--env {env_id!r}: {name} is a {type(target).__name__}, not a class or "
                "function that makes an environment"
            )
        return target
    if name in gymnasium.registry:
        return None
    raise UnknownEnvironmentError(
        f"--env {env_id!r}: module {module_name!r} has no {name!r}: no class or function of "
        "that name, and importing it registers no Gymnasium id of that name"
    )


def check_env(
    env_id: str,
    env_config: Mapping[str, Any] | None = None,
    *,
    source_directory: str | Path | None = None,
) -> None:
    """Build one environment of ``env_id`` and step it once, checking its spaces, so that a
    run that cannot train is refused before anything starts.

    Args:
        env_id: the run's ``--env``.
        env_config: keyword arguments of the environment (the run's ``env_config``).
        source_directory: the folder with the user's environment code, put first on the import
            path while checking.

    Raises:
        UnknownEnvironmentError: no such id, module or name.
        UnsupportedEnvironmentError: not an environment, fails to build or step, or a space
            the trainer does not support (the message names it).
    """
    with import_path(source_directory):
        factory = resolve_factory(env_id)
        if factory is not make_gymnasium:  # Atari, or a factory registered in this process
            return
        try:
            env = make_env(env_id, env_config)
        except (UnknownEnvironmentError, UnsupportedEnvironmentError):
            raise
        except UnsupportedSpaceError as error:
            raise UnsupportedEnvironmentError(f"--env {env_id!r}: {error}") from None
        except gymnasium.error.DependencyNotInstalled as error:
            raise UnsupportedEnvironmentError(
                f"--env {env_id!r} needs a package that is not installed: {_one_line(error)}"
            ) from None
        except Exception as error:
            raise UnsupportedEnvironmentError(
                f"--env {env_id!r} could not be built with env_config {dict(env_config or {})}: "
                f"{_one_line(error)}"
            ) from None
        try:
            try:
                action_spec(env.action_space)
            except UnsupportedSpaceError as error:
                raise UnsupportedEnvironmentError(f"--env {env_id!r}: {error}") from None
            try:
                env.reset(seed=0)
                env.action_space.seed(0)
                env.step(env.action_space.sample())
            except Exception as error:
                raise UnsupportedEnvironmentError(
                    f"--env {env_id!r} failed on its first reset or step: {_one_line(error)}"
                ) from None
        finally:
            with contextlib.suppress(Exception):
                env.close()


@contextlib.contextmanager
def import_path(directory: str | Path | None) -> Iterator[None]:
    """``directory`` first on ``sys.path`` for the block (nothing when None)."""
    if directory is None:
        yield
        return
    entry = str(Path(directory).expanduser().resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def _unknown_message(env_id: str) -> str:
    known = list(_FACTORIES) + list(gymnasium.registry)
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"unknown environment {env_id!r}: it is not a Gymnasium id (e.g. CartPole-v1), "
        f"an Atari id (e.g. ALE/Pong-v5, PongNoFrameskip-v4) or one registered with "
        f"rlfleet.impala.envs.register_env.{hint}"
    )
