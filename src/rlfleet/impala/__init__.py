"""rlfleet's built-in trainer: IMPALA (Espeholt et al. 2018), APPO and PPO (Schulman et al.
2017), on Ray or in one process, for discrete and continuous actions.

Independent of the rest of rlfleet: metrics and checkpoints leave through the
:class:`MetricSink` / :class:`ArtifactSink` protocols. Example::

    from rlfleet.impala import ImpalaConfig, StopConfig, train

    config = ImpalaConfig.from_dict({"num_workers": 0, "lr": 1e-3})
    result = train("CartPole-v1", config, StopConfig(episode_reward_mean=150))
    ppo = PPOConfig.from_dict({"num_workers": 0})
    train("Pendulum-v1", ppo, StopConfig(timesteps_total=200_000))

Command line (what the platform submits as a Ray job)::

    python -m rlfleet.impala --run IMPALA --env PongNoFrameskip-v4 \\
        --config '{"num_workers": 1, "model": {"dim": 42}}' --stop '{"episode_reward_mean": 18}'
"""

from rlfleet.impala.config import (
    APPOConfig,
    ConfigError,
    ImpalaConfig,
    ModelConfig,
    PPOConfig,
    StopConfig,
    TrainerConfig,
    config_class,
)
from rlfleet.impala.envs import (
    UnknownEnvironmentError,
    UnsupportedEnvironmentError,
    check_env,
    make_vector_env,
    register_env,
)
from rlfleet.impala.loop import ImpalaTrainer, Trainer, train
from rlfleet.impala.sinks import ArtifactSink, MetricSink

__all__ = [
    "APPOConfig",
    "ArtifactSink",
    "ConfigError",
    "ImpalaConfig",
    "ImpalaTrainer",
    "MetricSink",
    "ModelConfig",
    "PPOConfig",
    "StopConfig",
    "Trainer",
    "TrainerConfig",
    "UnknownEnvironmentError",
    "UnsupportedEnvironmentError",
    "check_env",
    "config_class",
    "make_vector_env",
    "register_env",
    "train",
]
