"""GAE against a deliberately slow NumPy reference written like the paper's equations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.impala import vtrace
from rlfleet.impala.gae import gae


def reference_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    bootstrap_value: np.ndarray,
    discounts: np.ndarray,
    lambda_: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Schulman et al. (2015), eq. (16), one element and one term at a time.

    A_t = sum_{l>=0} (prod_{i=t}^{t+l-1} gamma_i lambda) delta_{t+l}, the sum stopping after
    the step at which the episode ended (gamma_i = 0) or at the end of the unroll,
    delta_t = r_t + gamma_t V(x_{t+1}) - V(x_t), with V(x_T) the bootstrap value.
    """
    num_steps, batch = rewards.shape
    v_x = np.concatenate([values, bootstrap_value[None]], axis=0)  # V(x_0) .. V(x_T)
    advantages = np.zeros_like(values)
    for b in range(batch):
        for t in range(num_steps):
            total = 0.0
            for step in range(t, num_steps):
                weight = 1.0
                for i in range(t, step):
                    weight *= discounts[i, b] * lambda_
                delta = rewards[step, b] + discounts[step, b] * v_x[step + 1, b] - v_x[step, b]
                total += weight * delta
                if discounts[step, b] == 0.0:  # the episode ended at this step
                    break
            advantages[t, b] = total
    return advantages, advantages + values


def random_inputs(num_steps: int, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    episode_ends = rng.random((num_steps, batch)) < 0.15
    return {
        "rewards": rng.normal(0.0, 1.0, (num_steps, batch)),
        "values": rng.normal(0.0, 1.0, (num_steps, batch)),
        "bootstrap_value": rng.normal(0.0, 1.0, (batch,)),
        "discounts": np.where(episode_ends, 0.0, 0.99),
    }


def as_tensors(inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(value, dtype=torch.float64) for name, value in inputs.items()}


def discounted_returns(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """sum_l (prod gamma) r_{t+l}, plus the bootstrap value if the unroll ends mid-episode."""
    rewards, discounts = inputs["rewards"], inputs["discounts"]
    returns = np.zeros_like(rewards)
    running = inputs["bootstrap_value"].copy()
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + discounts[t] * running
        returns[t] = running
    return returns


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (20, 8), (50, 2)])
@pytest.mark.parametrize("lambda_", [0.0, 0.5, 0.95, 1.0])
def test_gae_matches_reference(shape, lambda_):
    inputs = random_inputs(*shape, seed=sum(shape))
    assert inputs["discounts"].min() == 0.0 or shape[0] * shape[1] < 10  # episode ends present
    expected_advantages, expected_returns = reference_gae(**inputs, lambda_=lambda_)

    result = gae(**as_tensors(inputs), lambda_=lambda_)

    np.testing.assert_allclose(
        result.advantages.numpy(), expected_advantages, rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(result.returns.numpy(), expected_returns, rtol=1e-10, atol=1e-10)
    assert result.advantages.shape == shape == result.returns.shape


def test_lambda_zero_is_the_one_step_td_error():
    inputs = random_inputs(10, 4, seed=1)
    v_next = np.concatenate([inputs["values"][1:], inputs["bootstrap_value"][None]], axis=0)
    td_errors = inputs["rewards"] + inputs["discounts"] * v_next - inputs["values"]

    result = gae(**as_tensors(inputs), lambda_=0.0)

    np.testing.assert_allclose(result.advantages.numpy(), td_errors, rtol=1e-12)


def test_lambda_one_is_the_bootstrapped_discounted_return_minus_the_value():
    inputs = random_inputs(15, 5, seed=2)
    assert inputs["discounts"].min() == 0.0

    result = gae(**as_tensors(inputs), lambda_=1.0)

    returns = discounted_returns(inputs)
    np.testing.assert_allclose(result.returns.numpy(), returns, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        result.advantages.numpy(), returns - inputs["values"], rtol=1e-10, atol=1e-10
    )


def test_an_episode_end_cuts_the_advantage():
    inputs = random_inputs(6, 1, seed=3)
    inputs["discounts"][:] = 0.9
    inputs["discounts"][2] = 0.0
    cut = gae(**as_tensors(inputs), lambda_=0.9)
    inputs["rewards"][3:] += 100.0  # the next episode
    inputs["bootstrap_value"] += 100.0
    changed = gae(**as_tensors(inputs), lambda_=0.9)
    torch.testing.assert_close(cut.advantages[:3], changed.advantages[:3])
    assert not torch.allclose(cut.advantages[3:], changed.advantages[3:])


@pytest.mark.parametrize("lambda_", [1.0, 0.95, 0.0])
def test_targets_equal_on_policy_vtrace(lambda_):
    inputs = random_inputs(20, 6, seed=4)
    tensors = as_tensors(inputs)

    on_policy = vtrace.from_importance_weights(
        log_rhos=torch.zeros_like(tensors["rewards"]),
        discounts=tensors["discounts"],
        rewards=tensors["rewards"],
        values=tensors["values"],
        bootstrap_value=tensors["bootstrap_value"],
        clip_rho_threshold=None,
        clip_pg_rho_threshold=None,
        clip_c_threshold=None,
        lambda_=lambda_,
    )
    result = gae(**tensors, lambda_=lambda_)

    torch.testing.assert_close(result.returns, on_policy.vs, rtol=1e-10, atol=1e-10)


def test_no_gradient_and_float32():
    tensors = {
        name: torch.tensor(value, dtype=torch.float32, requires_grad=True)
        for name, value in random_inputs(8, 3, seed=5).items()
    }
    result = gae(**tensors, lambda_=0.95)
    assert not result.advantages.requires_grad and not result.returns.requires_grad
    assert result.advantages.dtype == torch.float32 == result.returns.dtype
    torch.testing.assert_close(result.returns, result.advantages + tensors["values"].detach())
