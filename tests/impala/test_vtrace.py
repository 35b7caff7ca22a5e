"""V-trace against a deliberately slow NumPy reference written like the paper's equations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.impala import vtrace


def reference_vtrace(
    log_rhos: np.ndarray,
    discounts: np.ndarray,
    rewards: np.ndarray,
    values: np.ndarray,
    bootstrap_value: np.ndarray,
    rho_bar: float | None,
    pg_rho_bar: float | None,
    c_bar: float | None,
    lambda_: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Espeholt et al. (2018), eq. (1) and section 4.2, one element and one term at a time.

    v_s = V(x_s) + sum_{t=s}^{T-1} (prod_{i=s}^{t-1} gamma_i c_i) delta_t V,
    c_i = lambda min(c_bar, rho_i) (remark 5 of the paper; lambda 1 by default),
    delta_t V = rho_t (r_t + gamma_t V(x_{t+1}) - V(x_t)),
    A_s = rho^pg_s (r_s + gamma_s v_{s+1} - V(x_s)), with v_T = V(x_T).
    """

    def clip(weight: float, bar: float | None) -> float:
        return weight if bar is None else min(bar, weight)

    num_steps, batch = rewards.shape
    v_x = np.concatenate([values, bootstrap_value[None]], axis=0)  # V(x_0) .. V(x_T)
    rhos = np.exp(log_rhos)
    vs = np.zeros_like(values)
    advantages = np.zeros_like(values)
    for b in range(batch):
        for s in range(num_steps):
            total = v_x[s, b]
            for t in range(s, num_steps):
                trace = 1.0
                for i in range(s, t):
                    trace *= discounts[i, b] * lambda_ * clip(rhos[i, b], c_bar)
                delta = clip(rhos[t, b], rho_bar) * (
                    rewards[t, b] + discounts[t, b] * v_x[t + 1, b] - v_x[t, b]
                )
                total += trace * delta
            vs[s, b] = total
    for b in range(batch):
        for s in range(num_steps):
            v_next = vs[s + 1, b] if s + 1 < num_steps else bootstrap_value[b]
            advantages[s, b] = clip(rhos[s, b], pg_rho_bar) * (
                rewards[s, b] + discounts[s, b] * v_next - v_x[s, b]
            )
    return vs, advantages


def random_inputs(num_steps: int, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    episode_ends = rng.random((num_steps, batch)) < 0.15
    return {
        "log_rhos": rng.normal(0.0, 1.0, (num_steps, batch)),
        "discounts": np.where(episode_ends, 0.0, 0.99),
        "rewards": rng.normal(0.0, 1.0, (num_steps, batch)),
        "values": rng.normal(0.0, 1.0, (num_steps, batch)),
        "bootstrap_value": rng.normal(0.0, 1.0, (batch,)),
    }


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (20, 8), (50, 2)])
@pytest.mark.parametrize(
    "rho_bar, pg_rho_bar, c_bar",
    [(1.0, 1.0, 1.0), (2.0, 0.5, 0.9), (None, None, None), (0.3, 1.5, 1.0)],
)
def test_from_importance_weights_matches_reference(shape, rho_bar, pg_rho_bar, c_bar):
    inputs = random_inputs(*shape, seed=sum(shape))
    assert inputs["discounts"].min() == 0.0 or shape[0] * shape[1] < 10  # episode ends present
    expected_vs, expected_advantages = reference_vtrace(
        **inputs, rho_bar=rho_bar, pg_rho_bar=pg_rho_bar, c_bar=c_bar
    )

    tensors = {name: torch.tensor(value, dtype=torch.float64) for name, value in inputs.items()}
    result = vtrace.from_importance_weights(
        **tensors,
        clip_rho_threshold=rho_bar,
        clip_pg_rho_threshold=pg_rho_bar,
        clip_c_threshold=c_bar,
    )

    np.testing.assert_allclose(result.vs.numpy(), expected_vs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        result.pg_advantages.numpy(), expected_advantages, rtol=1e-10, atol=1e-10
    )


def test_clipping_changes_the_result():
    inputs = random_inputs(10, 4, seed=3)
    tensors = {name: torch.tensor(value) for name, value in inputs.items()}
    clipped = vtrace.from_importance_weights(
        **tensors, clip_rho_threshold=1.0, clip_c_threshold=1.0
    )
    unclipped = vtrace.from_importance_weights(
        **tensors, clip_rho_threshold=None, clip_pg_rho_threshold=None, clip_c_threshold=None
    )
    assert not torch.allclose(clipped.vs, unclipped.vs)


def test_on_policy_vtrace_is_the_discounted_bootstrapped_return():
    rng = np.random.default_rng(0)
    num_steps, batch, gamma = 6, 3, 0.9
    rewards = rng.normal(size=(num_steps, batch))
    bootstrap = rng.normal(size=batch)
    result = vtrace.from_importance_weights(
        log_rhos=torch.zeros(num_steps, batch, dtype=torch.float64),
        discounts=torch.full((num_steps, batch), gamma, dtype=torch.float64),
        rewards=torch.tensor(rewards),
        values=torch.tensor(rng.normal(size=(num_steps, batch))),
        bootstrap_value=torch.tensor(bootstrap),
    )
    expected = np.zeros_like(rewards)
    running = bootstrap.copy()
    for t in reversed(range(num_steps)):
        running = rewards[t] + gamma * running
        expected[t] = running
    np.testing.assert_allclose(result.vs.numpy(), expected, rtol=1e-10)


def test_from_logits_matches_importance_weights_and_keeps_policy_gradient():
    rng = np.random.default_rng(1)
    num_steps, batch, actions_n = 7, 5, 4
    behaviour = torch.tensor(rng.normal(size=(num_steps, batch, actions_n)))
    target = torch.tensor(rng.normal(size=(num_steps, batch, actions_n)), requires_grad=True)
    actions = torch.tensor(rng.integers(0, actions_n, size=(num_steps, batch)))
    inputs = random_inputs(num_steps, batch, seed=2)
    common = {
        name: torch.tensor(inputs[name])
        for name in ("discounts", "rewards", "values", "bootstrap_value")
    }

    result = vtrace.from_logits(behaviour, target, actions, **common)

    softmax = lambda logits: np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # noqa: E731
    pi = np.take_along_axis(softmax(target.detach().numpy()), actions.numpy()[..., None], -1)[
        ..., 0
    ]
    mu = np.take_along_axis(softmax(behaviour.numpy()), actions.numpy()[..., None], -1)[..., 0]
    np.testing.assert_allclose(result.log_rhos.numpy(), np.log(pi / mu), rtol=1e-10)
    expected = vtrace.from_importance_weights(result.log_rhos, **common)
    torch.testing.assert_close(result.vs, expected.vs)
    torch.testing.assert_close(result.pg_advantages, expected.pg_advantages)
    assert not result.vs.requires_grad and not result.pg_advantages.requires_grad
    (result.target_action_log_probs * result.pg_advantages).sum().backward()
    assert target.grad is not None and target.grad.abs().sum() > 0


@pytest.mark.parametrize("lambda_", [0.0, 0.5, 0.95])
def test_lambda_scales_the_traces(lambda_):
    inputs = random_inputs(12, 3, seed=7)
    expected_vs, expected_advantages = reference_vtrace(
        **inputs, rho_bar=1.0, pg_rho_bar=1.0, c_bar=1.0, lambda_=lambda_
    )
    tensors = {name: torch.tensor(value) for name, value in inputs.items()}
    result = vtrace.from_importance_weights(**tensors, lambda_=lambda_)
    np.testing.assert_allclose(result.vs.numpy(), expected_vs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(result.pg_advantages.numpy(), expected_advantages, rtol=1e-10)
