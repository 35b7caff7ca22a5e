from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.impala.losses import approx_kl, policy_loss, value_loss


def reference_clipped_surrogate(ratio, advantages, epsilon):
    """PPO's L^CLIP (Schulman et al. 2017, eq. 7), one step at a time."""
    terms = [
        min(r * a, float(np.clip(r, 1 - epsilon, 1 + epsilon)) * a)
        for r, a in zip(ratio, advantages, strict=True)
    ]
    return -float(np.mean(terms))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clipped_surrogate_matches_the_papers_objective(seed):
    generator = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(64, generator=generator) * 0.3 - 1.0
    behaviour = torch.randn(64, generator=generator) * 0.3 - 1.0
    advantages = torch.randn(64, generator=generator)
    loss = policy_loss(log_probs, behaviour, advantages, clip_param=0.2, normalize_advantages=False)
    ratio = np.exp((log_probs - behaviour).numpy())
    expected = reference_clipped_surrogate(ratio, advantages.numpy(), 0.2)
    assert loss.loss.item() == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(loss.ratio.numpy(), ratio, rtol=1e-5)


def test_normalised_advantages_and_the_plain_policy_gradient():
    log_probs = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    advantages = torch.tensor([1.0, 2.0, 6.0])
    plain = policy_loss(
        log_probs, log_probs.detach(), advantages, clip_param=0.0, normalize_advantages=False
    )
    assert plain.loss.item() == pytest.approx(-(-1.0 * 1 - 2.0 * 2 - 0.5 * 6) / 3)
    plain.loss.backward()
    torch.testing.assert_close(log_probs.grad, -advantages / 3)
    normalised = policy_loss(
        log_probs, log_probs.detach(), advantages, clip_param=0.2, normalize_advantages=True
    )
    scaled = (advantages - advantages.mean()) / advantages.std(correction=0)
    assert normalised.loss.item() == pytest.approx(-scaled.mean().item(), abs=1e-6)


def test_value_clipping_keeps_the_larger_error_of_a_value_moved_too_far():
    targets = torch.tensor([1.0, 1.0, 1.0])
    old = torch.tensor([0.0, 0.0, 0.0])
    values = torch.tensor([0.1, 0.5, 2.0])
    assert value_loss(values, targets, old, vf_clip_param=0.0).item() == pytest.approx(
        0.5 * np.mean([0.81, 0.25, 1.0])
    )
    # moved at most 0.2 from 0: 0.1 stays (error 0.81), 0.5 -> 0.2 (0.64 > 0.25), 2.0 -> 0.2
    # (0.64 < 1.0: the unclipped error is the larger)
    assert value_loss(values, targets, old, vf_clip_param=0.2).item() == pytest.approx(
        0.5 * np.mean([0.81, 0.64, 1.0])
    )


def test_approx_kl_estimates_the_kl_of_the_behaviour_to_the_policy():
    # Slow reference: the exact KL(mu || pi) of two categoricals, summed over the actions;
    # the estimate from 200,000 actions drawn from mu must agree.
    generator = torch.Generator().manual_seed(0)
    mu = torch.softmax(torch.randn(5, generator=generator), 0)
    pi = torch.softmax(torch.randn(5, generator=generator), 0)
    exact = sum(m * np.log(m / p) for m, p in zip(mu.tolist(), pi.tolist(), strict=True))
    actions = torch.multinomial(mu, 200_000, replacement=True, generator=generator)
    estimate = approx_kl(pi[actions] / mu[actions]).item()
    assert estimate == pytest.approx(exact, rel=0.03)
    assert approx_kl(torch.ones(10)).item() == 0.0  # the same policy
