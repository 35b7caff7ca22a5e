"""Actor-critic networks: a shared torso, a policy head and a value head.

The policy head's outputs parametrise the action distribution (:meth:`ActorCritic.distribution`):
logits of a categorical (Discrete), concatenated logits of one categorical per entry
(MultiDiscrete), or the mean of a diagonal Gaussian whose log standard deviations are learned
parameters independent of the state (Box). Image torsos take uint8 ``(N, C, H, W)`` frames and
convert them to float inside ``forward``, so rollouts stay uint8 until they reach the learner.
Convolutions run channels-last, which is what oneDNN is fastest at on CPU. Vector observations
may be normalised by running statistics held in the network (``obs_norm``), so that actors,
the learner and exported policies all see them the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from rlfleet.impala.config import ConfigError, ModelConfig
from rlfleet.impala.distributions import Categorical, DiagGaussian, MultiCategorical
from rlfleet.impala.normalization import RunningMeanStd
from rlfleet.impala.spaces import ActionSpec

IMAGE_NETWORKS = ("vision42", "fast42", "fine42", "nature", "cnn")

Distribution = Categorical | MultiCategorical | DiagGaussian


class ActorCritic(nn.Module):
    """``forward(obs) -> (policy outputs (N, P), values (N,))`` over a flat batch of
    observations; :meth:`distribution` makes the action distribution of the outputs.

    uint8 observations (Atari frames) are scaled to [0, 1]; float ones are used as they are
    (normalised first when the network has ``obs_norm``). Inputs are converted to the
    parameters' dtype (an actor's bfloat16 copy of the policy, see :func:`inference_dtype`), and
    the outputs are in it.
    """

    def __init__(
        self,
        torso: nn.Module,
        torso_size: int,
        action: ActionSpec,
        image: bool,
        obs_norm: RunningMeanStd | None = None,
        value_torso: nn.Module | None = None,
        initial_log_std: float = 0.0,
    ) -> None:
        super().__init__()
        self.image = image
        self.action = action
        self.obs_norm = obs_norm
        self.torso = torso
        self.value_torso = value_torso
        self.policy = nn.Linear(torso_size, action.num_outputs)
        self.value = nn.Linear(torso_size, 1)
        _init_orthogonal(self)
        nn.init.orthogonal_(self.policy.weight, gain=0.01)
        nn.init.orthogonal_(self.value.weight, gain=1.0)
        if action.kind == "box":
            self.log_std = nn.Parameter(torch.full((action.num_outputs,), initial_log_std))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = self.policy.weight.dtype
        if self.image:
            obs = frames_to_float(obs, dtype=dtype)
        elif obs.dtype == torch.uint8:
            obs = obs.to(dtype).mul_(1.0 / 255.0)
        else:
            obs = obs.to(dtype)
        if self.obs_norm is not None:
            obs = self.obs_norm.normalize(obs)
        features = self.torso(obs)
        value_features = features if self.value_torso is None else self.value_torso(obs)
        return self.policy(features), self.value(value_features).squeeze(-1)

    def distribution(self, outputs: torch.Tensor) -> Distribution:
        """The action distribution that policy ``outputs`` (float32) parametrise."""
        if self.action.kind == "discrete":
            return Categorical(outputs)
        if self.action.kind == "multi_discrete":
            return MultiCategorical(outputs, self.action.nvec)
        return DiagGaussian(outputs, self.log_std.to(outputs.dtype))


def frames_to_float(frames: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 frames ``(N, C, H, W)`` as ``dtype`` in [0, 1], stored channels-last; floating
    ones converted to ``dtype`` and made channels-last.

    uint8 frames already stored channels-last (:func:`channels_last_frames`) are converted in
    one contiguous pass.
    """
    if frames.dtype != torch.uint8:
        return frames.to(dtype).contiguous(memory_format=torch.channels_last)
    pixels = channels_last_frames(frames).movedim(-3, -1)  # (N, H, W, C), contiguous
    return pixels.to(dtype).mul_(1.0 / 255.0).movedim(-1, -3)


def channels_last_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames ``(..., C, H, W)``, same shape, stored channels-last (each pixel's C values
    together, as the convolutions read them); frames already stored so are returned as they are.

    The channel planes are interleaved with one copy per channel: about 2x faster on CPU than
    one strided copy (``contiguous(memory_format=torch.channels_last)``).
    """
    if frames.movedim(-3, -1).is_contiguous():
        return frames
    return torch.stack(frames.unbind(-3), dim=-1).movedim(-1, -3)


def inference_dtype(setting: str, *, image: bool = True) -> torch.dtype:
    """The dtype rollout actors run the policy in, for the config's ``actor_dtype``.

    ``auto`` is float32 for vector observations (small MLPs gain nothing, and a Gaussian
    policy's mean would be rounded to 3 digits), and for image networks bfloat16 on CPUs with
    bfloat16 matrix instructions (AMX or AVX512-BF16), where
    oneDNN runs Pong's convolutions about 2.5x faster than in float32 (measured on a 2-core
    Xeon with AMX: 0.49 ms instead of 1.16 ms for 64 frames), else float32; elsewhere bfloat16
    is emulated and slower. The behaviour policy's logits are recorded as computed, so V-trace
    and the PPO clip correct for the rounding as for any other difference between actor and
    learner.
    """
    if setting == "auto":
        return torch.bfloat16 if image and cpu_has_bfloat16_units() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[setting]


def cpu_has_bfloat16_units() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (Linux's /proc/cpuinfo flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


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
        ContiguousReLU(),
        nn.Flatten(),
    )
    return torso, 256


class ContiguousReLU(nn.Module):
    """ReLU whose output is stored contiguously (NCHW): the last convolution's, before Flatten.

    Flatten makes channels-last maps contiguous and hands its gradient back contiguous; a ReLU
    that saved a channels-last output then takes its backward pass with mismatched layouts, a
    slow path in PyTorch (measured: 144 us instead of 7 for a 64x32x4x4 map). A Pong learner's
    update takes ~4% less time with it (590 -> 567 ms for 2,048 steps, one thread).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x.contiguous())


class ContiguousELU(nn.Module):
    """ELU whose output is stored contiguously (see :class:`ContiguousReLU`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.elu(x.contiguous())


def with_activation(torso: nn.Sequential, activation: str) -> nn.Sequential:
    """``torso`` (an image network's) with its ReLUs made ``activation`` (relu or elu)."""
    if activation == "relu":
        return torso
    swap = {nn.ReLU: nn.ELU, ContiguousReLU: ContiguousELU}
    return nn.Sequential(*(swap[type(m)]() if type(m) in swap else m for m in torso))


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
        ContiguousReLU(),
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
        ContiguousReLU(),
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
        ContiguousReLU(),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 512),
        nn.ReLU(),
    )
    return torso, 512


MLP_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp_torso(
    inputs: int, hiddens: Sequence[int], activation: str = "tanh"
) -> tuple[nn.Module, int]:
    """MLP for vector observations (``activation``: a key of :data:`MLP_ACTIVATIONS`)."""
    layers: list[nn.Module] = []
    for size in hiddens:
        layers += [nn.Linear(inputs, size), MLP_ACTIVATIONS[activation]()]
        inputs = size
    return nn.Sequential(*layers), inputs


def cnn_torso(channels: int, height: int, width: int) -> tuple[nn.Module, int]:
    """For images of any size: 32@3x3 s2, 64@3x3 s2, 64@3x3 s1 (all padded by 1), the map
    average-pooled to at most 8x8, fc 256."""
    grid = (min(8, -(-height // 4)), min(8, -(-width // 4)))
    torso = nn.Sequential(
        nn.Conv2d(channels, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1, padding=1),
        ContiguousReLU(),
        nn.AdaptiveAvgPool2d(grid),
        nn.Flatten(),
        nn.Linear(64 * grid[0] * grid[1], 256),
        nn.ReLU(),
    )
    return torso, 256


def build_network(
    obs_shape: Sequence[int],
    action: ActionSpec | int,
    model: ModelConfig,
    *,
    obs_dtype: str = "uint8",
    normalize_observations: bool = False,
) -> ActorCritic:
    """The network for observations of ``obs_shape`` and ``obs_dtype`` (uint8 ``(C, H, W)``
    ones are images) and actions of ``action`` (an int: that many discrete actions) under
    ``model`` settings, with running observation normalisation when asked (vectors only).

    Raises:
        ConfigError: the network name is unknown or does not fit the observations.
    """
    if isinstance(action, int):
        action = ActionSpec("discrete", (), n=action)
    name = resolve_network_name(obs_shape, model, obs_dtype=obs_dtype)
    if name == "mlp":
        inputs = math.prod(obs_shape)
        torso, size = mlp_torso(inputs, model.fcnet_hiddens, model.fcnet_activation)
        norm = RunningMeanStd(tuple(obs_shape)) if normalize_observations else None
        value_torso = None
        if not model.vf_share_layers:
            value_mlp, _ = mlp_torso(inputs, model.fcnet_hiddens, model.fcnet_activation)
            value_torso = nn.Sequential(nn.Flatten(), value_mlp)
        return ActorCritic(
            nn.Sequential(nn.Flatten(), torso),
            size,
            action,
            False,
            norm,
            value_torso,
            initial_log_std=model.initial_log_std,
        )
    channels, height, width = obs_shape
    if name == "cnn":
        torso, size = cnn_torso(channels, height, width)
        torso = with_activation(torso, model.conv_activation)
        network = ActorCritic(torso, size, action, image=True)
        return network.to(memory_format=torch.channels_last)
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
    torso = with_activation(torso, model.conv_activation)
    return ActorCritic(torso, size, action, image=True).to(memory_format=torch.channels_last)


def resolve_network_name(
    obs_shape: Sequence[int], model: ModelConfig, *, obs_dtype: str = "uint8"
) -> str:
    """The concrete network ``model.network`` stands for with these observations: for images,
    auto is vision42 at 42x42, nature at 84x84 and cnn at other sizes."""
    image = len(obs_shape) == 3 and obs_dtype == "uint8"
    if model.network == "auto":
        if not image:
            return "mlp"
        return {42: "vision42", 84: "nature"}.get(obs_shape[-1], "cnn")
    if model.network == "mlp" or (image and model.network in IMAGE_NETWORKS):
        return model.network
    known = ", ".join(("auto", "mlp", *IMAGE_NETWORKS))
    raise ConfigError(f"model.network {model.network!r} is unknown or unfit (known: {known})")


def _init_orthogonal(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            nn.init.orthogonal_(layer.weight, gain=math.sqrt(2))
            nn.init.zeros_(layer.bias)
