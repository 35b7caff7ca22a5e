"""The losses every algorithm shares: a policy-gradient surrogate (PPO's clipped one when
``clip_param`` > 0) and a squared-error value loss (PPO2's clipped one when ``vf_clip_param``
> 0). Pure functions over flat minibatches of steps ``(N,)``; each returns a scalar."""

from __future__ import annotations

from typing import NamedTuple

import torch


class PolicyLoss(NamedTuple):
    """The policy loss and what it was made of (for the statistics)."""

    loss: torch.Tensor
    ratio: torch.Tensor
    """pi(a|x) / mu(a|x) per step, detached."""


def policy_loss(
    log_probs: torch.Tensor,
    behaviour_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip_param: float,
    normalize_advantages: bool,
) -> PolicyLoss:
    """``-mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A))`` with eps = ``clip_param``,
    or the plain policy gradient ``-mean(log pi(a|x) * A)`` when ``clip_param`` is 0;
    advantages scaled to zero mean and unit variance first when ``normalize_advantages``."""
    if normalize_advantages:
        std, mean = torch.std_mean(advantages, correction=0)
        advantages = (advantages - mean) / (std + 1e-8)
    ratio = torch.exp(log_probs - behaviour_log_probs)
    if clip_param > 0:
        clipped = ratio.clamp(1.0 - clip_param, 1.0 + clip_param)
        surrogate = torch.min(ratio * advantages, clipped * advantages)
    else:
        surrogate = log_probs * advantages
    return PolicyLoss(-surrogate.mean(), ratio.detach())


def approx_kl(ratio: torch.Tensor) -> torch.Tensor:
    """KL(mu || pi) estimated from the ratios r = pi(a|x) / mu(a|x) of actions drawn from mu:
    the mean of ``(r - 1) - log r`` (Schulman's k3: unbiased, never negative)."""
    return ((ratio - 1.0) - torch.log(ratio)).mean()


def value_loss(
    values: torch.Tensor,
    value_targets: torch.Tensor,
    old_values: torch.Tensor,
    *,
    vf_clip_param: float,
) -> torch.Tensor:
    """``0.5 * mean((V - target)^2)``; with ``vf_clip_param`` > 0 the larger of that and the
    error of V moved at most ``vf_clip_param`` from ``old_values`` (PPO2's value clipping)."""
    error = (values - value_targets).pow(2)
    if vf_clip_param > 0:
        moved = old_values + (values - old_values).clamp(-vf_clip_param, vf_clip_param)
        error = torch.max(error, (moved - value_targets).pow(2))
    return 0.5 * error.mean()
