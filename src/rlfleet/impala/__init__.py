"""rlfleet's built-in IMPALA trainer (Espeholt et al. 2018), on Ray or in one process.

Independent of the rest of rlfleet: metrics and checkpoints leave through the
:class:`MetricSink` / :class:`ArtifactSink` protocols. Example::

    from rlfleet.impala import ImpalaConfig, StopConfig, train

    config = ImpalaConfig.from_dict({"num_workers": 0, "lr": 1e-3})
    result = train("CartPole-v1", config, StopConfig(episode_reward_mean=150))

Command line (what the platform submits as a Ray job)::

    python -m rlfleet.impala --run IMPALA --env PongNoFrameskip-v4 \\
        --config '{"num_workers": 1, "model": {"dim": 42}}' --stop '{"episode_reward_mean": 18}'
"""

from rlfleet.impala.config import ConfigError, ImpalaConfig, ModelConfig, StopConfig
from rlfleet.impala.envs import UnknownEnvironmentError, make_vector_env, register_env
from rlfleet.impala.loop import ImpalaTrainer, train
from rlfleet.impala.sinks import ArtifactSink, MetricSink

__all__ = [
    "ArtifactSink",
    "ConfigError",
    "ImpalaConfig",
    "ImpalaTrainer",
    "MetricSink",
    "ModelConfig",
    "StopConfig",
    "UnknownEnvironmentError",
    "make_vector_env",
    "register_env",
    "train",
]
