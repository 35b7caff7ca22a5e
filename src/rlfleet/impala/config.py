"""Typed IMPALA configuration, parsed strictly from the seed's JSON arguments.

The seed passes ``--config '{"num_workers": 13, "sample_batch_size": 50, ...}'`` and
``--stop '{"episode_reward_mean": 18, "time_total_s": 3600}'``. Every key maps to a field
below; an unknown key or a value of the wrong type raises :class:`ConfigError` naming it.

Keys a run does not give take the defaults below, with one exception: a run that gives no
``--config`` at all (none, or ``{}``) of ALE Pong (``PongNoFrameskip-v4``, ``ALE/Pong-v5``)
on a small CPU-only machine (no GPU, at most 4 cores) starts from the tested preset
``presets.PONG_2CPU`` instead, which learns Pong on 2 cores. Any ``--config`` a run gives, the
seed's included, is used as given on top of the defaults below, never on top of a preset.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

_T = TypeVar("_T")


class ConfigError(ValueError):
    """A --config/--stop value that cannot be used (unknown key, wrong type, bad JSON)."""


@dataclass
class ModelConfig:
    """Network choice; ``dim`` follows RLlib's ``model.dim`` (observation side in pixels)."""

    dim: int = 84
    """Side of the square Atari observation: 42 (RLlib's small vision net) or 84 (Nature CNN)."""
    network: str = "auto"
    """auto (vision42 at dim 42, nature at 84, mlp for vectors), vision42, fast42, fine42, nature,
    mlp."""
    fcnet_hiddens: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer sizes of the MLP used for vector observations."""


@dataclass
class ImpalaConfig:
    """Everything that shapes an IMPALA run; seed (RLlib) names where the seed has one."""

    num_workers: int = 2
    """Rollout actors (Ray processes); 0 samples in the driver process, without Ray."""
    num_gpus: float = 0
    """GPUs for the learner; the learner uses CUDA when this is >= 1 and CUDA is available."""
    sample_batch_size: int = 50
    """Rollout length T: agent steps per environment in one rollout."""
    train_batch_size: int = 500
    """Agent steps per learner update (rollouts are concatenated along B until reached)."""
    num_sgd_iter: int = 1
    """Passes (epochs) over each train batch."""
    minibatch_size: int = 0
    """Agent steps per gradient step, drawn at random from the train batch; 0 takes the whole
    train batch at once."""
    num_data_loader_buffers: int = 1
    """Sample requests each actor keeps in flight (so that sampling overlaps learning)."""
    num_envs_per_worker: int = 16
    """Environments stepped together (one batched forward pass) by each actor."""
    num_cpus_per_worker: float = 1.0
    """CPUs reserved in Ray for each rollout actor."""
    env_num_threads: int = 0
    """Native threads stepping each Atari vector env; 0 means one per reserved worker CPU."""
    learner_num_threads: int = 1
    """torch threads of the learner (and in-process sampling); 0 keeps torch's (one per core)."""
    actor_dtype: str = "auto"
    """float32, bfloat16, or auto: bfloat16 where the CPU has bfloat16 matrix units (see
    ``networks.inference_dtype``). The dtype rollout actors run the policy in; the learner
    always learns in float32."""
    env_config: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the environment factory (e.g. repeat_action_probability)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Network settings (RLlib's ``model`` dict)."""
    lr: float = 6e-4
    """Learning rate."""
    lr_decay_steps: int = 0
    """Lower the learning rate linearly from ``lr`` to 0 over this many agent steps learned
    (as CleanRL's PPO anneals it over a run); 0 keeps it constant."""
    optimizer: str = "adam"
    """adam or rmsprop."""
    opt_eps: float = 1e-8
    """Epsilon of the optimizer (Adam's eps, or RMSprop's eps)."""
    rmsprop_alpha: float = 0.99
    """RMSprop smoothing constant (ignored for Adam)."""
    gamma: float = 0.99
    """Discount factor."""
    entropy_coeff: float = 0.01
    """Weight of the entropy bonus."""
    vf_loss_coeff: float = 0.5
    """Weight of the value-function loss."""
    grad_clip: float = 40.0
    """Global gradient-norm clip; 0 disables."""
    reward_clip: float = 1.0
    """Rewards are clipped to [-reward_clip, reward_clip] for learning; 0 disables."""
    vtrace_clip_rho_threshold: float = 1.0
    """V-trace rho-bar (clip of importance weights in the value targets)."""
    vtrace_clip_pg_rho_threshold: float = 1.0
    """V-trace clip of importance weights in the policy-gradient advantages."""
    vtrace_lambda: float = 1.0
    """V-trace lambda (c_t = lambda * min(1, rho_t)); below 1 lowers the targets' variance."""
    normalize_advantages: bool = False
    """Scale policy-gradient advantages to zero mean, unit variance per minibatch (as APPO)."""
    clip_param: float = 0.0
    """APPO: PPO's clipped surrogate on pi/mu with this epsilon (safe num_sgd_iter > 1); 0: off."""
    min_time_s_per_iteration: float = 10.0
    """A training iteration (one metrics report) lasts at least this many seconds."""
    checkpoint_freq_s: float = 300.0
    """Seconds between checkpoints (one is always written at the end)."""
    seed: int = 0
    """Seed for environments and network initialisation."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of primitives (what checkpoints store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImpalaConfig:
        """Build from a (partial) dict; unknown keys and wrong types raise ConfigError."""
        config = _build(cls, data, prefix="config")
        config.validate()
        return config

    def validate(self) -> None:
        """Check value ranges; raises ConfigError naming the first bad field."""
        positive = ("sample_batch_size", "train_batch_size", "num_sgd_iter", "num_envs_per_worker")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"config key '{name}' must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ConfigError(f"config key 'num_workers' must be >= 0, got {self.num_workers}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ConfigError(
                f"config key 'optimizer' must be adam or rmsprop, not {self.optimizer!r}"
            )
        if self.actor_dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError(
                f"config key 'actor_dtype' must be auto, float32 or bfloat16, "
                f"not {self.actor_dtype!r}"
            )
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"config key 'gamma' must be in [0, 1], got {self.gamma}")


@dataclass
class StopConfig:
    """Stop criteria; the run stops when the first one that is set is reached."""

    episode_reward_mean: float | None = None
    """Mean raw score of the last 100 finished episodes to reach."""
    time_total_s: float | None = None
    """Wall-clock seconds of training (accumulated across restores)."""
    timesteps_total: int | None = None
    """Agent steps sampled (one step = one action, 4 frames on Atari)."""
    training_iteration: int | None = None
    """Training iterations (metric reports)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of primitives."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StopConfig:
        """Build from a dict; unknown keys and wrong types raise ConfigError."""
        return _build(cls, data, prefix="stop")

    def reached(self, result: Mapping[str, float]) -> str | None:
        """Name of the first criterion ``result`` meets, or None."""
        for name, limit in self.to_dict().items():
            value = result.get(name)
            if limit is not None and value is not None and not math.isnan(value) and value >= limit:
                return name
        return None


def parse_json_object(text: str, *, what: str) -> dict[str, Any]:
    """Parse ``--config``/``--stop`` JSON text into a dict, or raise a one-line ConfigError."""
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"--{what} is not valid JSON ({error.msg} at char {error.pos}): {text!r}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"--{what} must be a JSON object like '{{\"key\": value}}', got {text!r}")
    return data


def _build(cls: type[_T], data: Mapping[str, Any], *, prefix: str) -> _T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix} must be an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(
                f"unknown {prefix} key '{key}' (known keys: {', '.join(sorted(names))})"
            )
        kwargs[key] = _coerce(hints[key], value, f"{prefix}.{key}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, prefix=where)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if origin is list and isinstance(value, list):
        return [_coerce(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict and isinstance(value, dict):
        return dict(value)
    if hint in (str, bool) and isinstance(value, hint):
        return value
    expected = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{where} must be {expected}, got {value!r}")
