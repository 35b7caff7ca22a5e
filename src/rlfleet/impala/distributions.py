"""Action distributions for the trainer, in plain torch ops over batched parameter tensors.

Every distribution has a batch shape ``(...)`` (for a rollout, time-major ``(T, B)``; for an
actor's step, ``(N,)``) and is built from parameters with one trailing dimension more:

- :class:`Categorical`: logits ``(..., A)``; actions are integers ``(...)``.
- :class:`MultiCategorical`: logits ``(..., sum(nvec))``, one categorical per entry of
  ``nvec``; actions are integers ``(..., K)`` with ``K = len(nvec)``.
- :class:`DiagGaussian`: mean ``(..., D)`` and a log standard deviation broadcastable to it
  (usually a learned, state-independent ``(D,)`` parameter); actions are floats ``(..., D)``.

``log_prob(actions)`` and ``entropy()`` are ``(...)``: summed over the K parts or the D
dimensions. ``log_prob`` keeps its gradient with respect to the parameters; ``sample`` draws
without gradient, from ``generator`` when one is given (it must live on the parameters'
device), so that a seeded generator gives the same actions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F

from rlfleet.impala.vtrace import taken

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class ActionDistribution(Protocol):
    """What the trainer needs of a distribution over actions with batch shape ``(...)``."""

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Actions drawn from the distribution, without gradient."""
        ...

    def mode(self) -> torch.Tensor:
        """The most likely actions."""
        ...

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a) ``(...)``, differentiable with respect to the parameters."""
        ...

    def entropy(self) -> torch.Tensor:
        """The entropy ``(...)``, differentiable with respect to the parameters."""
        ...


class Categorical:
    """A categorical distribution over A actions from logits ``(..., A)``; actions ``(...)``."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits
        """The unnormalised logits ``(..., A)`` as given."""
        self.log_probs = F.log_softmax(logits, dim=-1)
        """The normalised log-probabilities ``(..., A)``."""

    @torch.no_grad()
    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Integer actions ``(...)`` (int64), by the Gumbel-max trick."""
        dtype = torch.promote_types(self.log_probs.dtype, torch.float32)
        uniform = torch.rand(
            self.log_probs.shape, generator=generator, device=self.log_probs.device, dtype=dtype
        )
        tiny = torch.finfo(dtype).tiny
        gumbel = -torch.log(-torch.log(uniform.clamp_(min=tiny)))
        return (self.log_probs.to(dtype) + gumbel).argmax(dim=-1)

    def mode(self) -> torch.Tensor:
        """The most likely action ``(...)`` (int64)."""
        return self.logits.argmax(dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a) ``(...)`` of integer ``actions`` ``(...)``."""
        return taken(self.log_probs, actions)

    def entropy(self) -> torch.Tensor:
        """-sum_a pi(a) log pi(a), ``(...)``; actions masked with -inf logits add nothing."""
        min_real = torch.finfo(self.log_probs.dtype).min
        log_probs = self.log_probs.clamp(min=min_real)
        return -(log_probs.exp() * log_probs).sum(dim=-1)


class MultiCategorical:
    """Independent categoricals, one per entry of ``nvec``, from logits ``(..., sum(nvec))``.

    Actions are integers ``(..., K)``, ``K = len(nvec)`` (gymnasium's ``MultiDiscrete``);
    ``log_prob`` and ``entropy`` are the sums over the K parts.
    """

    def __init__(self, logits: torch.Tensor, nvec: Sequence[int]) -> None:
        self.nvec = tuple(int(n) for n in nvec)
        """The number of choices of each part."""
        if not self.nvec or min(self.nvec) < 1:
            raise ValueError(f"nvec must be a non-empty list of positive sizes, got {nvec}")
        if logits.shape[-1] != sum(self.nvec):
            raise ValueError(
                f"logits have {logits.shape[-1]} entries in their last dimension, but "
                f"nvec {list(self.nvec)} needs {sum(self.nvec)}"
            )
        self.parts = [Categorical(part) for part in torch.split(logits, self.nvec, dim=-1)]
        """One :class:`Categorical` per entry of ``nvec``."""

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Integer actions ``(..., K)`` (int64)."""
        return torch.stack([part.sample(generator) for part in self.parts], dim=-1)

    def mode(self) -> torch.Tensor:
        """The most likely action of each part, ``(..., K)`` (int64)."""
        return torch.stack([part.mode() for part in self.parts], dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """sum_k log pi_k(a_k), ``(...)``, of integer ``actions`` ``(..., K)``."""
        return torch.stack(
            [part.log_prob(actions[..., k]) for k, part in enumerate(self.parts)], dim=-1
        ).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        """The sum of the parts' entropies, ``(...)``."""
        return torch.stack([part.entropy() for part in self.parts], dim=-1).sum(dim=-1)


class DiagGaussian:
    """A Gaussian with diagonal covariance: mean ``(..., D)``, log_std broadcastable to it.

    Actions are floats ``(..., D)``; ``log_prob`` and ``entropy`` are summed over D.
    """

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        self.mean = mean
        """The mean ``(..., D)``."""
        self.log_std = torch.broadcast_to(log_std, mean.shape)
        """The log standard deviation, broadcast to ``(..., D)``."""

    @torch.no_grad()
    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Actions ``(..., D)`` in the mean's dtype: mean + std * N(0, 1)."""
        noise = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + self.log_std.exp() * noise

    def mode(self) -> torch.Tensor:
        """The mean ``(..., D)``."""
        return self.mean

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """sum_d log N(a_d; mean_d, std_d^2), ``(...)``, of ``actions`` ``(..., D)``."""
        scaled = (actions - self.mean) * torch.exp(-self.log_std)
        return (-0.5 * scaled.square() - self.log_std - _HALF_LOG_2PI).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        """sum_d (1/2 + 1/2 log(2 pi) + log std_d), ``(...)``."""
        return (0.5 + _HALF_LOG_2PI + self.log_std).sum(dim=-1)
