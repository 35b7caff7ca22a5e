"""RunningMeanStd against NumPy's moments of everything it was shown."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rlfleet.impala.normalization import RunningMeanStd

SHAPES = [(), (3,), (2, 4)]
BATCH_SIZES = [1, 7, 100, 3, 250]


def stream(shape: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Batches of different sizes whose elements have different means and scales."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.1, 5.0, shape)
    offset = rng.uniform(-10.0, 10.0, shape)
    return [offset + scale * rng.normal(size=(n, *shape)) for n in BATCH_SIZES]


def with_pseudo_observation(data: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``data`` pooled with ``epsilon`` of weight at mean 0, variance 1."""
    n = data.shape[0]
    total = n + epsilon
    mean = data.sum(axis=0) / total
    sum_of_squares = ((data - mean) ** 2).sum(axis=0) + epsilon * (1.0 + mean**2)
    return mean, sum_of_squares / total


@pytest.mark.parametrize("shape", SHAPES)
def test_statistics_match_numpy_over_the_concatenation(shape):
    batches = stream(shape, seed=len(shape))
    data = np.concatenate(batches, axis=0)
    exact = RunningMeanStd(shape, epsilon=0.0)
    default = RunningMeanStd(shape)
    for batch in batches:
        exact.update(torch.tensor(batch, dtype=torch.float32))
        default.update(torch.tensor(batch, dtype=torch.float32))

    np.testing.assert_allclose(exact.mean.numpy(), data.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(exact.var.numpy(), data.var(axis=0), rtol=1e-5)
    assert exact.count.item() == data.shape[0]

    mean, var = with_pseudo_observation(data, epsilon=1e-4)
    np.testing.assert_allclose(default.mean.numpy(), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(default.var.numpy(), var, rtol=1e-5)
    np.testing.assert_allclose(default.mean.numpy(), data.mean(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(default.var.numpy(), data.var(axis=0), rtol=1e-4)
    assert default.count.item() == pytest.approx(data.shape[0] + 1e-4, rel=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_buffers_are_in_the_state_dict_and_round_trip(shape):
    statistics = RunningMeanStd(shape)
    for batch in stream(shape, seed=9):
        statistics.update(torch.tensor(batch))
    state = statistics.state_dict()
    assert set(state) == {"mean", "var", "count"}
    assert state["mean"].dtype == torch.float32 == state["var"].dtype
    assert state["mean"].shape == shape == state["var"].shape
    assert state["count"].dtype == torch.float64 and state["count"].shape == ()

    restored = RunningMeanStd(shape)
    restored.load_state_dict(state)
    for name in ("mean", "var", "count"):
        assert torch.equal(getattr(restored, name), getattr(statistics, name))
    x = torch.randn(5, *shape)
    torch.testing.assert_close(restored.normalize(x), statistics.normalize(x))


def test_starts_as_the_identity_up_to_epsilon():
    statistics = RunningMeanStd((3,))
    assert statistics.count.item() == pytest.approx(1e-4)
    x = torch.tensor([[1.0, -2.0, 3.0]])
    torch.testing.assert_close(statistics.normalize(x), x)
    torch.testing.assert_close(statistics.scale(x), x)


def test_normalize_centres_scales_and_clips():
    statistics = RunningMeanStd((2,))
    statistics.update(torch.tensor([[0.0, 10.0], [2.0, 30.0], [4.0, 20.0]]))
    mean, var = statistics.mean.numpy(), statistics.var.numpy()
    x = torch.tensor([[1.0, 25.0], [3.0, 0.0], [100.0, -500.0]])

    expected = np.clip((x.numpy() - mean) / np.sqrt(var + 1e-8), -10.0, 10.0)
    np.testing.assert_allclose(statistics.normalize(x).numpy(), expected, rtol=1e-6)
    assert statistics.normalize(x)[2].tolist() == [10.0, -10.0]
    assert statistics.normalize(x, clip=1.5).abs().max().item() == 1.5


def test_scale_divides_by_the_std_without_centring():
    statistics = RunningMeanStd(())
    statistics.update(torch.tensor([5.0, 7.0, 9.0, 11.0]))
    rewards = torch.tensor([1.0, -2.0, 0.0])
    expected = rewards.numpy() / np.sqrt(statistics.var.item() + 1e-8)
    np.testing.assert_allclose(statistics.scale(rewards).numpy(), expected, rtol=1e-6)
    assert statistics.scale(torch.zeros(1)).item() == 0.0  # not centred


def test_scalar_stream_of_discounted_returns():
    statistics = RunningMeanStd(())
    returns = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 16))
    for row in returns:  # one (num_envs,) batch per step, as a reward scaler sees them
        statistics.update(torch.tensor(row))
    assert statistics.mean.shape == () == statistics.var.shape
    np.testing.assert_allclose(statistics.mean.item(), returns.mean(), rtol=1e-5)
    np.testing.assert_allclose(statistics.var.item(), returns.var(), rtol=1e-4)


def test_low_precision_inputs_stay_in_their_dtype():
    statistics = RunningMeanStd((4,))
    statistics.update(torch.randn(50, 4) * 3.0 + 1.0)
    x = torch.randn(8, 4) * 3.0 + 1.0
    for dtype in (torch.bfloat16, torch.float64):
        normalized = statistics.normalize(x.to(dtype))
        scaled = statistics.scale(x.to(dtype))
        assert normalized.dtype == dtype == scaled.dtype
        torch.testing.assert_close(
            normalized.float(), statistics.normalize(x), atol=0.05, rtol=0.02
        )
        torch.testing.assert_close(scaled.float(), statistics.scale(x), atol=0.05, rtol=0.02)


def test_update_takes_no_gradient_and_checks_the_shape():
    statistics = RunningMeanStd((3,))
    statistics.update(torch.randn(10, 3, requires_grad=True))
    assert not statistics.mean.requires_grad and not statistics.var.requires_grad
    count = statistics.count.item()
    statistics.update(torch.empty(0, 3))
    assert statistics.count.item() == count
    with pytest.raises(ValueError, match="shape"):
        statistics.update(torch.randn(10, 4))
    with pytest.raises(ValueError, match="shape"):
        statistics.update(torch.randn(3))


class NormalisedPolicy(nn.Module):
    """A tiny policy that normalises its observations before a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.obs_normalizer = RunningMeanStd((4,))
        self.linear = nn.Linear(4, 2)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.linear(self.obs_normalizer.normalize(obs, clip=5.0))


@pytest.mark.filterwarnings("ignore:`torch.jit.trace.*` is deprecated:DeprecationWarning")
def test_normalize_works_inside_a_traced_module():
    torch.manual_seed(0)
    policy = NormalisedPolicy().eval()
    policy.obs_normalizer.update(torch.randn(200, 4) * 4.0 + 2.0)
    traced = torch.jit.trace(policy, torch.randn(3, 4))

    obs = torch.randn(6, 4) * 4.0 + 2.0
    obs[0] = 1000.0  # clipped
    torch.testing.assert_close(traced(obs), policy(obs))
    assert {"obs_normalizer.mean", "obs_normalizer.var", "obs_normalizer.count"} <= set(
        traced.state_dict()
    )
