"""Generalised Advantage Estimation (Schulman et al. 2015, arXiv 1506.02438, section 3).

Pure functions over time-major tensors, with the same conventions as :mod:`vtrace`: every
``(T, B)`` argument has time first; ``values`` are V(x_t) for t < T and ``bootstrap_value`` is
V(x_T), shape ``(B,)``; ``discounts`` already hold ``gamma * (1 - done_t)``, zero where an
episode ended at step t. No gradient flows through the returned advantages and targets.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class GAEReturns(NamedTuple):
    """GAE(gamma, lambda) advantages and the value targets ``advantages + values``, ``(T, B)``."""

    advantages: torch.Tensor
    returns: torch.Tensor


@torch.no_grad()
def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
    discounts: torch.Tensor,
    lambda_: float,
) -> GAEReturns:
    """GAE(gamma, lambda) advantages and value targets of one batch of unrolls.

    Computes A_t = delta_t + gamma_t lambda A_{t+1} backwards in time, with
    delta_t = r_t + gamma_t V(x_{t+1}) - V(x_t) and A_T = 0 (eq. 16 of the paper, cut where
    gamma_t is zero). lambda 0 gives the one-step TD error, lambda 1 the bootstrapped discounted
    return minus V(x_t); the targets equal on-policy V-trace's ``vs`` with the same lambda.
    """
    values_t_plus_1 = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
    deltas = rewards + discounts * values_t_plus_1 - values
    decay = discounts * lambda_

    advantages = torch.empty_like(values)
    accumulated = torch.zeros_like(bootstrap_value)
    for t in reversed(range(values.shape[0])):
        accumulated = deltas[t] + decay[t] * accumulated
        advantages[t] = accumulated
    return GAEReturns(advantages=advantages, returns=advantages + values)
