"""Action distributions against torch.distributions, and their samples against their laws."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as td

from rlfleet.impala.distributions import Categorical, DiagGaussian, MultiCategorical

BATCH_SHAPES = [(), (7,), (4, 3), (6, 2, 5)]  # the last one like a time-major (T, B, N) unroll
NVEC = (3, 2, 4)


def random_logits(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Float64 logits with a spread wide enough to make some actions rare."""
    generator = torch.Generator().manual_seed(seed)
    return (2.0 * torch.randn(shape, generator=generator, dtype=torch.float64)).requires_grad_()


def gradient(output: torch.Tensor, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """d sum(output * weights) / d inputs, for fixed pseudo-random weights."""
    weights = torch.linspace(-1.0, 2.0, output.numel(), dtype=output.dtype).reshape(output.shape)
    return torch.autograd.grad((output * weights).sum(), inputs, retain_graph=True)


# Categorical


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES)
def test_categorical_log_prob_entropy_and_gradients_match_torch(batch_shape):
    logits = random_logits((*batch_shape, 5), seed=len(batch_shape))
    actions = torch.randint(0, 5, batch_shape, generator=torch.Generator().manual_seed(1))
    ours, theirs = Categorical(logits), td.Categorical(logits=logits)

    torch.testing.assert_close(ours.log_prob(actions), theirs.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), theirs.entropy())
    assert ours.log_prob(actions).shape == batch_shape == ours.entropy().shape
    for our_output, their_output in [
        (ours.log_prob(actions), theirs.log_prob(actions)),
        (ours.entropy(), theirs.entropy()),
    ]:
        torch.testing.assert_close(gradient(our_output, logits), gradient(their_output, logits))


def test_categorical_entropy_ignores_masked_actions():
    logits = torch.tensor([[0.5, -math.inf, 1.0], [-math.inf, -math.inf, 2.0]])
    entropy = Categorical(logits).entropy()
    assert torch.isfinite(entropy).all()
    torch.testing.assert_close(entropy, td.Categorical(logits=logits).entropy())
    unmasked = Categorical(torch.tensor([0.5, 1.0])).entropy()
    torch.testing.assert_close(entropy, torch.stack([unmasked, torch.tensor(0.0)]))


def test_categorical_mode_is_the_argmax():
    logits = torch.tensor([[0.1, 3.0, -1.0], [2.0, 0.0, 1.9]])
    assert Categorical(logits).mode().tolist() == [1, 0]
    assert Categorical(logits).mode().dtype == torch.int64


def test_categorical_samples_follow_the_probabilities():
    probs = torch.tensor([0.05, 0.15, 0.3, 0.5])
    logits = probs.log().expand(20_000, 4)
    samples = Categorical(logits).sample(torch.Generator().manual_seed(0))
    assert samples.shape == (20_000,) and samples.dtype == torch.int64
    frequencies = torch.bincount(samples, minlength=4).float() / samples.numel()
    torch.testing.assert_close(frequencies, probs, atol=0.012, rtol=0.0)


def test_categorical_never_samples_masked_actions():
    logits = torch.tensor([0.0, -math.inf, 0.0, -math.inf]).expand(5_000, 4)
    samples = Categorical(logits).sample(torch.Generator().manual_seed(0))
    assert set(samples.tolist()) == {0, 2}


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES)
def test_categorical_sample_shape_and_seed(batch_shape):
    distribution = Categorical(random_logits((*batch_shape, 6), seed=3))
    first = distribution.sample(torch.Generator().manual_seed(42))
    again = distribution.sample(torch.Generator().manual_seed(42))
    assert first.shape == batch_shape and first.dtype == torch.int64
    assert ((first >= 0) & (first < 6)).all()
    assert torch.equal(first, again)
    assert not first.requires_grad
    assert distribution.sample().shape == batch_shape  # the global generator


def test_categorical_different_seeds_give_different_samples():
    distribution = Categorical(torch.zeros(1_000, 6))
    first = distribution.sample(torch.Generator().manual_seed(1))
    second = distribution.sample(torch.Generator().manual_seed(2))
    assert not torch.equal(first, second)


# MultiCategorical


def torch_multi_categorical(logits: torch.Tensor) -> list[td.Categorical]:
    return [td.Categorical(logits=part) for part in torch.split(logits, NVEC, dim=-1)]


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES)
def test_multi_categorical_is_the_sum_of_its_parts(batch_shape):
    logits = random_logits((*batch_shape, sum(NVEC)), seed=10 + len(batch_shape))
    generator = torch.Generator().manual_seed(5)
    actions = torch.stack([torch.randint(0, n, batch_shape, generator=generator) for n in NVEC], -1)
    ours, theirs = MultiCategorical(logits, NVEC), torch_multi_categorical(logits)

    their_log_prob = sum(part.log_prob(actions[..., k]) for k, part in enumerate(theirs))
    their_entropy = sum(part.entropy() for part in theirs)
    torch.testing.assert_close(ours.log_prob(actions), their_log_prob)
    torch.testing.assert_close(ours.entropy(), their_entropy)
    assert ours.log_prob(actions).shape == batch_shape == ours.entropy().shape
    torch.testing.assert_close(
        gradient(ours.log_prob(actions), logits), gradient(their_log_prob, logits)
    )
    torch.testing.assert_close(gradient(ours.entropy(), logits), gradient(their_entropy, logits))


def test_multi_categorical_mode_is_the_argmax_of_each_part():
    logits = torch.tensor([[0.0, 2.0, 1.0, 5.0, 4.0, 0.0, 0.0, 0.0, 9.0]])
    mode = MultiCategorical(logits, NVEC).mode()
    assert mode.tolist() == [[1, 0, 3]] and mode.dtype == torch.int64


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES)
def test_multi_categorical_sample_shape_and_seed(batch_shape):
    distribution = MultiCategorical(random_logits((*batch_shape, sum(NVEC)), seed=4), NVEC)
    first = distribution.sample(torch.Generator().manual_seed(7))
    assert first.shape == (*batch_shape, len(NVEC)) and first.dtype == torch.int64
    assert torch.equal(first, distribution.sample(torch.Generator().manual_seed(7)))
    for k, n in enumerate(NVEC):
        assert ((first[..., k] >= 0) & (first[..., k] < n)).all()


def test_multi_categorical_samples_follow_each_part():
    parts = [torch.tensor([0.2, 0.8]), torch.tensor([0.5, 0.3, 0.1, 0.1])]
    logits = torch.cat([part.log() for part in parts]).expand(20_000, 6)
    samples = MultiCategorical(logits, (2, 4)).sample(torch.Generator().manual_seed(0))
    for k, probs in enumerate(parts):
        frequencies = torch.bincount(samples[:, k], minlength=len(probs)).float() / 20_000
        torch.testing.assert_close(frequencies, probs, atol=0.012, rtol=0.0)


def test_multi_categorical_rejects_logits_of_the_wrong_width():
    with pytest.raises(ValueError, match="nvec"):
        MultiCategorical(torch.zeros(2, 8), NVEC)
    with pytest.raises(ValueError, match="nvec"):
        MultiCategorical(torch.zeros(2, 0), ())


# DiagGaussian


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES)
@pytest.mark.parametrize("state_dependent_std", [False, True])
def test_diag_gaussian_log_prob_entropy_and_gradients_match_torch(batch_shape, state_dependent_std):
    dims = 3
    mean = random_logits((*batch_shape, dims), seed=20 + len(batch_shape))
    std_shape = (*batch_shape, dims) if state_dependent_std else (dims,)
    log_std = (0.5 * random_logits(std_shape, seed=30)).detach().requires_grad_()
    actions = mean.detach() + torch.randn(
        (*batch_shape, dims), generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    ours = DiagGaussian(mean, log_std)
    theirs = td.Independent(td.Normal(mean, log_std.exp()), 1)

    torch.testing.assert_close(ours.log_prob(actions), theirs.log_prob(actions))
    assert ours.log_prob(actions).shape == batch_shape == ours.entropy().shape
    torch.testing.assert_close(ours.entropy(), theirs.entropy().expand(batch_shape))
    torch.testing.assert_close(
        gradient(ours.log_prob(actions), mean, log_std),
        gradient(theirs.log_prob(actions), mean, log_std),
    )
    torch.testing.assert_close(
        gradient(ours.entropy(), log_std), gradient(theirs.entropy().expand(batch_shape), log_std)
    )


def test_diag_gaussian_mode_is_the_mean():
    mean = torch.tensor([[0.5, -1.0], [2.0, 3.0]])
    assert torch.equal(DiagGaussian(mean, torch.zeros(2)).mode(), mean)


def test_diag_gaussian_samples_have_the_mean_and_std():
    mean = torch.tensor([0.0, 5.0, -2.0])
    log_std = torch.tensor([0.0, math.log(0.1), math.log(3.0)])
    distribution = DiagGaussian(mean.expand(20_000, 3), log_std)
    samples = distribution.sample(torch.Generator().manual_seed(0))
    assert samples.shape == (20_000, 3) and samples.dtype == torch.float32
    std = log_std.exp()
    torch.testing.assert_close(samples.mean(0), mean, atol=0.03 * std.max().item(), rtol=0.0)
    torch.testing.assert_close(samples.std(0), std, rtol=0.03, atol=0.0)


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES)
def test_diag_gaussian_sample_shape_and_seed(batch_shape):
    mean = random_logits((*batch_shape, 4), seed=8)
    log_std = torch.zeros(4, requires_grad=True, dtype=torch.float64)
    distribution = DiagGaussian(mean, log_std)
    first = distribution.sample(torch.Generator().manual_seed(3))
    assert first.shape == (*batch_shape, 4) and first.dtype == torch.float64
    assert torch.equal(first, distribution.sample(torch.Generator().manual_seed(3)))
    assert not first.requires_grad
    assert not torch.equal(first, distribution.sample(torch.Generator().manual_seed(4)))
