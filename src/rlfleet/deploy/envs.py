"""The environment a deployed policy plays in, rebuilt from its metadata with Gymnasium alone.

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
    return gymnasium.spec(env_id).entry_point in ATARI_ENTRY


def preprocessing(env_id: str, dim: int) -> dict[str, Any]:
    """How observations are made, as plain data (it goes into exported models' metadata)."""
    if not is_atari(env_id):
        return {
            "kind": "none",
            "description": f"gymnasium.make({env_id!r}) observations as they are",
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
        "repeat_action_probability": float(kwargs.get("repeat_action_probability", 0.0)),
    }


def make_env(env_id: str, prep: dict[str, Any], *, render: bool = False) -> gymnasium.Env:
    """One environment producing what the policy was trained on (``render``: RGB frames)."""
    render_mode = "rgb_array" if render else None
    if render:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # no display needed
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    if prep.get("kind") != "atari":
        return gymnasium.make(env_id, render_mode=render_mode)
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    kwargs: dict[str, Any] = {"render_mode": render_mode}
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


def action_meanings(env: gymnasium.Env) -> list[str] | None:
    getter = getattr(env.unwrapped, "get_action_meanings", None)
    return list(getter()) if getter else None
