"""Actor-critic networks: a shared torso, a policy head (logits) and a value head.

Image torsos take uint8 ``(N, C, H, W)`` frames and convert them to float inside ``forward``,
so rollouts stay uint8 until they reach the learner. Convolutions run channels-last, which is
what oneDNN is fastest at on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from rlfleet.impala.config import ConfigError, ModelConfig

IMAGE_NETWORKS = ("vision42", "fast42", "fine42", "nature")


class ActorCritic(nn.Module):
    """``forward(obs) -> (logits (N, A), values (N,))`` over a flat batch of observations.

    uint8 observations (Atari frames) are scaled to [0, 1]; float ones are used as they are.
    """

    def __init__(self, torso: nn.Module, torso_size: int, num_actions: int, image: bool) -> None:
        super().__init__()
        self.image = image
        self.torso = torso
        self.policy = nn.Linear(torso_size, num_actions)
        self.value = nn.Linear(torso_size, 1)
        _init_orthogonal(self)
        nn.init.orthogonal_(self.policy.weight, gain=0.01)
        nn.init.orthogonal_(self.value.weight, gain=1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if obs.dtype == torch.uint8:
            obs = obs.float().mul_(1.0 / 255.0)
        if self.image:
            obs = obs.contiguous(memory_format=torch.channels_last)
        features = self.torso(obs)
        return self.policy(features), self.value(features).squeeze(-1)


def vision42_torso(channels: int) -> tuple[nn.Module, int]:
    """RLlib's classic vision net for 42x42 frames: 16@4x4 s2, 32@4x4 s2 ("same"), 256@11x11."""
    torso = nn.Sequential(
        nn.ZeroPad2d((1, 1, 1, 1)),
        nn.Conv2d(channels, 16, 4, stride=2),
        nn.ReLU(),
        nn.ZeroPad2d((1, 2, 1, 2)),
        nn.Conv2d(16, 32, 4, stride=2),
        nn.ReLU(),
        nn.Conv2d(32, 256, 11),
        nn.ReLU(),
        nn.Flatten(),
    )
    return torso, 256


def fast42_torso(channels: int) -> tuple[nn.Module, int]:
    """A cheaper torso for 42x42 frames on CPUs: 16@8x8 s4 (padded by 1), 32@4x4 s2, fc 256
    (~4x fewer MACs than vision42).

    The padding makes the strides tile all 42 columns and rows (44 = 4 * 9 + 8, 10 = 2 * 3 + 4).
    Without it the last 6 columns were never seen, and in Pong they hold the agent's paddle.
    """
    torso = nn.Sequential(
        nn.Conv2d(channels, 16, 8, stride=4, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 256),
        nn.ReLU(),
    )
    return torso, 256


def fine42_torso(channels: int) -> tuple[nn.Module, int]:
    """For 42x42 frames: 16@4x4 s2, 32@4x4 s2 (both padded by 1), fc 256 from the 10x10 grid.

    Strides of 2 and a fine grid under the fc layer keep where small objects are: fitted to
    tell from one frame stack whether a paddle will catch a ball, it reaches a correlation of
    0.7 where fast42 (a 4x4 grid under its fc layer) stays at 0.1. About 2.5x fast42's cost.
    """
    torso = nn.Sequential(
        nn.Conv2d(channels, 16, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 10 * 10, 256),
        nn.ReLU(),
    )
    return torso, 256


def nature_torso(channels: int) -> tuple[nn.Module, int]:
    """The Nature DQN CNN for 84x84 frames: 32@8x8 s4, 64@4x4 s2, 64@3x3 s1, fc 512."""
    torso = nn.Sequential(
        nn.Conv2d(channels, 32, 8, stride=4),
        nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 512),
        nn.ReLU(),
    )
    return torso, 512


def mlp_torso(inputs: int, hiddens: Sequence[int]) -> tuple[nn.Module, int]:
    """Tanh MLP for vector observations."""
    layers: list[nn.Module] = []
    for size in hiddens:
        layers += [nn.Linear(inputs, size), nn.Tanh()]
        inputs = size
    return nn.Sequential(*layers), inputs


def build_network(obs_shape: Sequence[int], num_actions: int, model: ModelConfig) -> ActorCritic:
    """The network for observations of ``obs_shape`` under ``model`` settings.

    Raises:
        ConfigError: the network name is unknown or does not fit the observations.
    """
    name = resolve_network_name(obs_shape, model)
    if name == "mlp":
        torso, size = mlp_torso(math.prod(obs_shape), model.fcnet_hiddens)
        return ActorCritic(nn.Sequential(nn.Flatten(), torso), size, num_actions, image=False)
    channels, height, width = obs_shape
    expected = 84 if name == "nature" else 42
    if (height, width) != (expected, expected):
        raise ConfigError(
            f"model.network {name!r} needs {expected}x{expected} frames, got {height}x{width}; "
            f"set model.dim to {expected}"
        )
    builders = {
        "vision42": vision42_torso,
        "fast42": fast42_torso,
        "fine42": fine42_torso,
        "nature": nature_torso,
    }
    torso, size = builders[name](channels)
    return ActorCritic(torso, size, num_actions, image=True).to(memory_format=torch.channels_last)


def resolve_network_name(obs_shape: Sequence[int], model: ModelConfig) -> str:
    """The concrete network ``model.network`` stands for with these observations."""
    image = len(obs_shape) == 3
    if model.network == "auto":
        if not image:
            return "mlp"
        return "vision42" if obs_shape[-1] <= 42 else "nature"
    if model.network == "mlp" or (image and model.network in IMAGE_NETWORKS):
        return model.network
    known = ", ".join(("auto", "mlp", *IMAGE_NETWORKS))
    raise ConfigError(f"model.network {model.network!r} is unknown or unfit (known: {known})")


def _init_orthogonal(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            nn.init.orthogonal_(layer.weight, gain=math.sqrt(2))
            nn.init.zeros_(layer.bias)
