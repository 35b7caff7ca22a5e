"""The environment a deployed policy plays in, rebuilt from its metadata.

Non-Atari environments (Gymnasium ids, MuJoCo ids, the user's own ``module:Class`` or
``module:Id-v0``) are made by the trainer's own :func:`rlfleet.impala.envs.make_env`, with the
run's ``env_config`` and the same observation wrappers (Discrete one-hot, Dict/Tuple
flattened, HWC images to CHW), so a policy sees what it was trained on. Rendering needs no
display: pygame draws into SDL's dummy driver, MuJoCo into an EGL context.

Atari policies were trained on ``AtariVectorEnv``'s standard preprocessing; Gymnasium's
``AtariPreprocessing`` + ``FrameStackObservation`` with the same settings give the same frames
(measured: 0.08 grey levels apart on average, from the same emulator states), so anyone can
reproduce the observations with Gymnasium and ale-py, without rlfleet.
"""

from __future__ import annotations

import os
from typing import Any

import ale_py
import gymnasium

gymnasium.register_envs(ale_py)

ATARI_ENTRY = ("ale_py.env:AtariEnv", ale_py.env.AtariEnv)


def is_atari(env_id: str) -> bool:
    """Whether ``env_id`` is an ALE game of Gymnasium's registry (ids of the user's own code,
    ``module:name``, never are: nothing is imported to tell)."""
    if ":" in env_id:
        return False
    try:
        return gymnasium.spec(env_id).entry_point in ATARI_ENTRY
    except gymnasium.error.Error:  # registered elsewhere (rlfleet.impala.envs.register_env)
        return False


def preprocessing(
    env_id: str, dim: int, env_config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """How observations are made, as plain data (it goes into exported models' metadata);
    an Atari run's ``env_config`` may set its ``repeat_action_probability``."""
    if not is_atari(env_id):
        return {
            "kind": "none",
            "description": (
                f"the observations of {env_id!r} (made with the run's env_config), Box ones as "
                "they are, uint8 HxWxC images as CxHxW, Discrete one-hot, MultiDiscrete, "
                "MultiBinary, Dict and Tuple flattened with gymnasium.wrappers."
                "FlattenObservation (rlfleet.impala.spaces)"
            ),
        }
    kwargs = gymnasium.spec(env_id).kwargs
    return {
        "kind": "atari",
        "description": (
            f"gymnasium.make({env_id!r}, frameskip=1), then "
            f"AtariPreprocessing(noop_max=30, frame_skip=4, screen_size={dim}, grayscale_obs=True) "
            "and FrameStackObservation(stack_size=4): uint8 frames, (4, H, W), newest last"
        ),
        "frame_skip": 4,
        "max_pool": True,
        "screen_size": dim,
        "grayscale": True,
        "frame_stack": 4,
        "noop_max": 30,
        "repeat_action_probability": float(
            (env_config or {}).get(
                "repeat_action_probability", kwargs.get("repeat_action_probability", 0.0)
            )
        ),
    }


def make_env(
    env_id: str,
    prep: dict[str, Any],
    *,
    env_config: dict[str, Any] | None = None,
    render: bool = False,
) -> gymnasium.Env:
    """One environment producing what the policy was trained on (``render``: RGB frames).

    Args:
        env_id: The run's environment id.
        prep: The policy's ``preprocessing`` (see :func:`preprocessing`).
        env_config: The run's ``env_config``: keyword arguments of a non-Atari environment.
        render: Make it render RGB frames (``render_mode="rgb_array"``), with no display.
    """
    render_mode = "rgb_array" if render else None
    if render:
        use_headless_rendering()
    if prep.get("kind") != "atari":
        from rlfleet.impala.envs import make_env as make_trainer_env

        return make_trainer_env(env_id, env_config, render_mode=render_mode)
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    kwargs: dict[str, Any] = {"render_mode": render_mode}
    if "repeat_action_probability" in prep:
        kwargs["repeat_action_probability"] = prep["repeat_action_probability"]
    if gymnasium.spec(env_id).kwargs.get("frameskip") != 1:
        kwargs["frameskip"] = 1  # the wrapper skips frames itself
    env = gymnasium.make(env_id, **kwargs)
    env = AtariPreprocessing(
        env,
        noop_max=prep["noop_max"],
        frame_skip=prep["frame_skip"],
        screen_size=prep["screen_size"],
        grayscale_obs=prep["grayscale"],
    )
    return FrameStackObservation(env, stack_size=prep["frame_stack"])


def use_headless_rendering() -> None:
    """Let environments render without a display: SDL's dummy video and audio drivers
    (pygame), and, when there is no X or Wayland display, MuJoCo on EGL (GPU or Mesa's
    software renderer); settings already made are kept."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("MUJOCO_GL", "egl")
    if os.environ.get("MUJOCO_GL") == "egl":  # PyOpenGL must load the same platform
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def action_meanings(env: gymnasium.Env) -> list[str] | None:
    getter = getattr(env.unwrapped, "get_action_meanings", None)
    return list(getter()) if getter else None
