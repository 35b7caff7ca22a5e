"""V-trace off-policy targets (Espeholt et al. 2018, arXiv 1802.01561, section 4).

Pure functions over time-major tensors: every ``(T, B)`` argument has time first; ``values``
are V(x_t) for t < T and ``bootstrap_value`` is V(x_T), shape ``(B,)``. ``discounts`` already
hold zeros where an episode ended. No gradient flows through the returned targets.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class VTraceReturns(NamedTuple):
    """V-trace value targets ``vs`` and policy-gradient advantages, both ``(T, B)``."""

    vs: torch.Tensor
    pg_advantages: torch.Tensor


class VTraceFromLogitsReturns(NamedTuple):
    """:class:`VTraceReturns` plus the log-probabilities they were computed from."""

    vs: torch.Tensor
    pg_advantages: torch.Tensor
    log_rhos: torch.Tensor
    behaviour_action_log_probs: torch.Tensor
    target_action_log_probs: torch.Tensor


def action_log_probs(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a_t | x_t) for logits ``(T, B, A)`` and integer actions ``(T, B)``."""
    return taken(F.log_softmax(logits, dim=-1), actions)


def taken(log_probs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The entries of ``log_probs`` ``(..., A)`` at the integer ``actions`` ``(...)``."""
    return log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def from_importance_weights(
    log_rhos: torch.Tensor,
    discounts: torch.Tensor,
    rewards: torch.Tensor,
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
    clip_rho_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    lambda_: float = 1.0,
) -> VTraceReturns:
    """V-trace from log importance weights log(pi(a_t|x_t) / mu(a_t|x_t)).

    Computes v_s = V(x_s) + delta_s + gamma_s c_s (v_{s+1} - V(x_{s+1})) backwards in time,
    with delta_t = rho_t (r_t + gamma_t V(x_{t+1}) - V(x_t)), rho_t = min(rho_bar, pi/mu) and
    c_t = lambda min(c_bar, pi/mu) (the paper's remark 5: lambda < 1 trades bias for variance,
    like GAE's lambda). A threshold of None leaves that weight unclipped.
    """
    rhos = torch.exp(log_rhos)
    clipped_rhos = _clip(rhos, clip_rho_threshold)
    cs = lambda_ * _clip(rhos, clip_c_threshold)
    values_t_plus_1 = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
    deltas = clipped_rhos * (rewards + discounts * values_t_plus_1 - values)
    decay = discounts * cs

    vs_minus_values = torch.empty_like(values)
    accumulated = torch.zeros_like(bootstrap_value)
    for t in reversed(range(values.shape[0])):
        accumulated = deltas[t] + decay[t] * accumulated
        vs_minus_values[t] = accumulated
    vs = vs_minus_values + values

    vs_t_plus_1 = torch.cat([vs[1:], bootstrap_value.unsqueeze(0)], dim=0)
    clipped_pg_rhos = _clip(rhos, clip_pg_rho_threshold)
    pg_advantages = clipped_pg_rhos * (rewards + discounts * vs_t_plus_1 - values)
    return VTraceReturns(vs=vs, pg_advantages=pg_advantages)


def from_logits(
    behaviour_policy_logits: torch.Tensor,
    target_policy_logits: torch.Tensor,
    actions: torch.Tensor,
    discounts: torch.Tensor,
    rewards: torch.Tensor,
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
    clip_rho_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    lambda_: float = 1.0,
) -> VTraceFromLogitsReturns:
    """V-trace from behaviour (mu) and target (pi) logits ``(T, B, A)`` and actions ``(T, B)``.

    ``target_action_log_probs`` keeps its gradient (the policy-gradient term needs it); the
    targets themselves are computed without gradient.
    """
    target_log_probs = action_log_probs(target_policy_logits, actions)
    behaviour_log_probs = action_log_probs(behaviour_policy_logits, actions)
    log_rhos = target_log_probs.detach() - behaviour_log_probs
    returns = from_importance_weights(
        log_rhos,
        discounts,
        rewards,
        values.detach(),
        bootstrap_value.detach(),
        clip_rho_threshold=clip_rho_threshold,
        clip_pg_rho_threshold=clip_pg_rho_threshold,
        clip_c_threshold=clip_c_threshold,
        lambda_=lambda_,
    )
    return VTraceFromLogitsReturns(
        vs=returns.vs,
        pg_advantages=returns.pg_advantages,
        log_rhos=log_rhos,
        behaviour_action_log_probs=behaviour_log_probs,
        target_action_log_probs=target_log_probs,
    )


def _clip(weights: torch.Tensor, threshold: float | None) -> torch.Tensor:
    return weights if threshold is None else torch.clamp(weights, max=threshold)
