"""Per-algorithm learning targets: what each step's value should be and how much better its
action was than expected, computed once per train batch (held fixed through its epochs).

Each function takes time-major ``(T, B)`` tensors: the learner's current ``values`` (and
``bootstrap_value`` ``(B,)``), the log-probabilities of the taken actions under the learner's
policy and the acting (behaviour) policy, the rewards as learned from and ``discounts``
(``gamma``, zero where an episode ended), and returns :class:`Targets`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from rlfleet.impala import vtrace
from rlfleet.impala.config import ImpalaConfig, PPOConfig, TrainerConfig
from rlfleet.impala.gae import gae


class Targets(NamedTuple):
    """Value targets and policy-gradient advantages, both ``(T, B)``."""

    value_targets: torch.Tensor
    advantages: torch.Tensor


@torch.no_grad()
def vtrace_targets(
    config: ImpalaConfig,
    *,
    target_log_probs: torch.Tensor,
    behaviour_log_probs: torch.Tensor,
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
) -> Targets:
    """IMPALA and APPO: V-trace targets ``vs`` and advantages, correcting for the actors'
    policy lag with clipped importance weights pi/mu."""
    returns = vtrace.from_importance_weights(
        log_rhos=target_log_probs - behaviour_log_probs,
        discounts=discounts,
        rewards=rewards,
        values=values,
        bootstrap_value=bootstrap_value,
        clip_rho_threshold=config.vtrace_clip_rho_threshold,
        clip_pg_rho_threshold=config.vtrace_clip_pg_rho_threshold,
        lambda_=config.vtrace_lambda,
    )
    return Targets(returns.vs, returns.pg_advantages)


@torch.no_grad()
def gae_targets(
    config: PPOConfig,
    *,
    target_log_probs: torch.Tensor,
    behaviour_log_probs: torch.Tensor,
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
) -> Targets:
    """PPO: GAE(lambda) advantages and their returns as value targets (the actors sampled
    with the learner's weights, so no correction is needed)."""
    del target_log_probs, behaviour_log_probs
    returns = gae(rewards, values, bootstrap_value, discounts, config.gae_lambda)
    return Targets(returns.returns, returns.advantages)


TargetsFunction = Callable[..., Targets]


def targets_function(config: TrainerConfig) -> TargetsFunction:
    """The targets of ``config``'s algorithm: GAE for PPO, V-trace for IMPALA and APPO."""
    return gae_targets if isinstance(config, PPOConfig) else vtrace_targets
