"""Typed trainer configurations (IMPALA, APPO, PPO), parsed strictly from the seed's JSON
arguments.

The seed passes ``--config '{"num_workers": 13, "sample_batch_size": 50, ...}'`` and
``--stop '{"episode_reward_mean": 18, "time_total_s": 3600}'``. Every key maps to a field
below; an unknown key or a value of the wrong type raises :class:`ConfigError` naming it.

Keys a run does not give take the defaults below, with one exception: a run that gives no
``--config`` at all (none, or ``{}``) of ALE Pong (``PongNoFrameskip-v4``, ``ALE/Pong-v5``)
on a small CPU-only machine (no GPU, at most 4 cores) starts from the tested preset
``presets.PONG_2CPU`` instead, which learns Pong on 2 cores. Any ``--config`` a run gives, the
seed's included, is used as given on top of the defaults below, never on top of a preset.

:class:`TrainerConfig` holds what every algorithm shares (actors, environments, network,
optimizer); each algorithm's config adds its own fields and defaults: :class:`ImpalaConfig`
(V-trace), :class:`APPOConfig` (IMPALA with PPO's clipped surrogate), :class:`PPOConfig`
(synchronous, GAE). :func:`config_class` maps ``--run`` to the class.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

_T = TypeVar("_T")
_C = TypeVar("_C", bound="TrainerConfig")


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
    fcnet_activation: str = "tanh"
    """Activation of the MLP's hidden layers: tanh or relu."""
    conv_activation: str = "relu"
    """Activation of the image networks: relu or elu (which has no dead units: Pong's seed 2
    lost most of fast42's ReLU units early and never left -20)."""
    vf_share_layers: bool = False
    """MLP: the value function shares the policy's hidden layers (else it has its own MLP of
    the same sizes, as RLlib's and CleanRL's defaults). Image networks always share."""
    initial_log_std: float = 0.0
    """Continuous actions: the Gaussian policy's log standard deviation at the start (learned
    from there; 0 is a standard deviation of 1, -0.7 about 0.5)."""


@dataclass
class TrainerConfig:
    """What every algorithm's run has; seed (RLlib) names where the seed has one."""

    algorithm: ClassVar[str] = ""

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
    """Keyword arguments of the environment: of your own environment's class or function, of
    gymnasium.make, or of AtariVectorEnv (e.g. repeat_action_probability)."""
    env_vectorization: str = "auto"
    """How each actor steps its (non-Atari) environments: sync (in the actor's process), async
    (a subprocess each), or auto (async when one step takes 1 ms or more)."""
    normalize_observations: bool = False
    """Normalise vector observations by a running mean and variance (part of the network: it
    travels with the weights and into exported policies); not for images."""
    normalize_rewards: bool = False
    """Scale rewards for learning by the running standard deviation of the discounted return
    (episode scores stay the environment's)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Network settings (RLlib's ``model`` dict)."""
    lr: float = 6e-4
    """Learning rate."""
    lr_decay_steps: int = 0
    """Lower the learning rate linearly from ``lr`` to 0 over this many agent steps learned
    (as CleanRL's PPO anneals it over a run); 0 keeps it constant."""
    kl_target: float = 0.0
    """Adapt the learning rate, starting from ``lr``, so that each pass over a train batch
    changes the policy by about this KL (the mean of ``(r - 1) - log r``, r = pi/mu): x1.5
    after a pass below half of it, /1.5 after one above twice it, within [lr / 100, 4 lr]
    (rl_games' adaptive schedule); 0 keeps ``lr`` (or its decay)."""
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
    normalize_advantages: bool = False
    """Scale policy-gradient advantages to zero mean, unit variance per minibatch."""
    clip_param: float = 0.0
    """PPO's clipped surrogate on pi/mu with this epsilon (safe num_sgd_iter > 1); 0: off."""
    min_time_s_per_iteration: float = 10.0
    """A training iteration (one metrics report) lasts at least this many seconds."""
    checkpoint_freq_s: float = 300.0
    """Seconds between checkpoints (one is always written at the end)."""
    seed: int = 0
    """Seed for environments and network initialisation."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of primitives (what checkpoints store)."""
        return dataclasses.asdict(self)

    def rollouts_per_batch(self) -> int:
        """Rollouts (of ``num_envs_per_worker`` x ``sample_batch_size`` steps) per update."""
        steps_per_rollout = self.sample_batch_size * self.num_envs_per_worker
        return max(1, -(-self.train_batch_size // steps_per_rollout))

    @classmethod
    def from_dict(cls: type[_C], data: Mapping[str, Any]) -> _C:
        """Build from a (partial) dict; unknown keys and wrong types raise ConfigError."""
        config = _build(cls, data, prefix="config")
        config.validate()
        return config

    def validate(self) -> None:
        """Check value ranges; raises ConfigError naming the first bad field."""
        positive = ("sample_batch_size", "num_sgd_iter", "num_envs_per_worker")
        if not isinstance(self, PPOConfig):
            positive += ("train_batch_size",)
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"config key '{name}' must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ConfigError(f"config key 'num_workers' must be >= 0, got {self.num_workers}")
        if self.kl_target < 0 or (self.kl_target > 0 and self.lr_decay_steps > 0):
            raise ConfigError(
                "config key 'kl_target' must be >= 0, and not set together with "
                f"'lr_decay_steps' (got {self.kl_target} and {self.lr_decay_steps})"
            )
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
        if self.env_vectorization not in ("auto", "sync", "async"):
            raise ConfigError(
                f"config key 'env_vectorization' must be auto, sync or async, "
                f"not {self.env_vectorization!r}"
            )
        if self.model.conv_activation not in ("relu", "elu"):
            raise ConfigError(
                "config key 'model.conv_activation' must be relu or elu, "
                f"not {self.model.conv_activation!r}"
            )
        if self.model.fcnet_activation not in ("tanh", "relu"):
            raise ConfigError(
                f"config key 'model.fcnet_activation' must be tanh or relu, "
                f"not {self.model.fcnet_activation!r}"
            )


@dataclass
class ImpalaConfig(TrainerConfig):
    """IMPALA (Espeholt et al. 2018): asynchronous actors, V-trace off-policy correction."""

    algorithm: ClassVar[str] = "IMPALA"

    vtrace_clip_rho_threshold: float = 1.0
    """V-trace rho-bar (clip of importance weights in the value targets)."""
    vtrace_clip_pg_rho_threshold: float = 1.0
    """V-trace clip of importance weights in the policy-gradient advantages."""
    vtrace_lambda: float = 1.0
    """V-trace lambda (c_t = lambda * min(1, rho_t)); below 1 lowers the targets' variance."""


@dataclass
class APPOConfig(ImpalaConfig):
    """APPO: IMPALA's actors and V-trace targets, PPO's clipped surrogate and normalised
    advantages (RLlib's APPO), so each batch can be learned from several times."""

    algorithm: ClassVar[str] = "APPO"

    num_sgd_iter: int = 2
    """Passes (epochs) over each train batch."""
    minibatch_size: int = 256
    """Agent steps per gradient step, drawn at random from the train batch; 0 takes the whole
    train batch at once."""
    normalize_advantages: bool = True
    """Scale policy-gradient advantages to zero mean, unit variance per minibatch."""
    clip_param: float = 0.4
    """PPO's clipped surrogate on pi/mu with this epsilon; 0: off (plain IMPALA)."""
    vtrace_lambda: float = 0.95
    """V-trace lambda (c_t = lambda * min(1, rho_t)); below 1 lowers the targets' variance."""


@dataclass
class PPOConfig(TrainerConfig):
    """PPO (Schulman et al. 2017), synchronous: every actor samples with the same weights, the
    learner takes GAE(lambda) advantages and several epochs of clipped-surrogate minibatches,
    then the actors sample again (as CleanRL's ppo.py and ppo_continuous_action.py)."""

    algorithm: ClassVar[str] = "PPO"

    num_envs_per_worker: int = 8
    """Environments stepped together (one batched forward pass) by each actor."""
    sample_batch_size: int = 128
    """Rollout length T: agent steps per environment in one rollout."""
    train_batch_size: int = 0
    """Agent steps per update (whole rollouts); 0: one rollout from each actor."""
    num_sgd_iter: int = 4
    """Passes (epochs) over each train batch."""
    minibatch_size: int = 256
    """Agent steps per gradient step, drawn at random from the train batch; 0 takes the whole
    train batch at once."""
    lr: float = 2.5e-4
    """Learning rate."""
    grad_clip: float = 0.5
    """Global gradient-norm clip; 0 disables."""
    reward_clip: float = 0.0
    """Rewards are clipped to [-reward_clip, reward_clip] for learning; 0 disables."""
    normalize_advantages: bool = True
    """Scale advantages to zero mean, unit variance per minibatch."""
    clip_param: float = 0.2
    """Epsilon of PPO's clipped surrogate objective."""
    gae_lambda: float = 0.95
    """GAE's lambda: 0 is one-step TD, 1 the Monte-Carlo return (bootstrapped at the end)."""
    vf_clip_param: float = 0.0
    """Clip the value function's change per update to this (PPO2's value clipping); 0: off."""
    min_time_s_per_iteration: float = 1.0
    """A training iteration (one metrics report) lasts at least this many seconds."""

    def rollouts_per_batch(self) -> int:
        if self.train_batch_size == 0:
            return max(1, self.num_workers)
        return super().rollouts_per_batch()

    def validate(self) -> None:
        super().validate()
        if self.clip_param <= 0:
            raise ConfigError(f"config key 'clip_param' must be > 0 for PPO, got {self.clip_param}")
        if self.train_batch_size < 0:
            raise ConfigError(
                f"config key 'train_batch_size' must be >= 0, got {self.train_batch_size}"
            )
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"config key 'gae_lambda' must be in [0, 1], got {self.gae_lambda}")


ALGORITHMS: dict[str, type[TrainerConfig]] = {
    cls.algorithm: cls for cls in (ImpalaConfig, APPOConfig, PPOConfig)
}


def config_class(run: str) -> type[TrainerConfig]:
    """The config class of algorithm ``run`` (``--run``): IMPALA, APPO or PPO.

    Raises:
        ConfigError: ``run`` is not built in.
    """
    if run not in ALGORITHMS:
        raise ConfigError(
            f"--run {run!r} is not built in; use one of {', '.join(ALGORITHMS)} (or run your "
            "own script with `rlfleet submit`)"
        )
    return ALGORITHMS[run]


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
