"""Running mean and variance of a stream of batches, for observation and reward normalisation.

:class:`RunningMeanStd` keeps its statistics in registered buffers, so they travel with the
policy network's ``state_dict`` (checkpoints, weight broadcasts to actors) and into traced or
exported graphs, where ``normalize`` reads them as constants.
"""

from __future__ import annotations

import torch
from torch import nn

_VAR_EPSILON = 1e-8


class RunningMeanStd(nn.Module):
    """Mean and variance over every batch passed to :meth:`update`, one per element of ``shape``.

    Batches are combined with their moments (Chan et al. 1979's parallel algorithm, as in OpenAI
    baselines' ``RunningMeanStd``). The statistics start as one pseudo-observation of weight
    ``epsilon`` with mean 0 and variance 1, which keeps :meth:`normalize` finite before the
    first update and barely moves them afterwards.
    """

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        super().__init__()
        self.shape = tuple(shape)
        """The shape of one element of the stream; ``()`` for a stream of scalars."""
        self.register_buffer("mean", torch.zeros(self.shape, dtype=torch.float32))
        self.register_buffer("var", torch.ones(self.shape, dtype=torch.float32))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Add a batch ``(N, *shape)`` to the statistics (accumulated in float64)."""
        if tuple(batch.shape[1:]) != self.shape or batch.dim() != len(self.shape) + 1:
            raise ValueError(
                f"expected a batch of shape (N, {', '.join(map(str, self.shape))}), "
                f"got {tuple(batch.shape)}"
            )
        batch_count = batch.shape[0]
        if batch_count == 0:
            return
        batch = batch.detach().to(torch.float64)
        batch_mean = batch.mean(dim=0)
        batch_var = batch.var(dim=0, unbiased=False)

        mean = self.mean.to(torch.float64)
        count = self.count.to(torch.float64)
        total = count + batch_count
        delta = batch_mean - mean
        new_mean = mean + delta * (batch_count / total)
        sum_of_squares = (
            self.var.to(torch.float64) * count
            + batch_var * batch_count
            + delta.square() * (count * batch_count / total)
        )
        self.mean.copy_(new_mean)
        self.var.copy_(sum_of_squares / total)
        self.count.copy_(total)

    def normalize(self, x: torch.Tensor, clip: float = 10.0) -> torch.Tensor:
        """clamp((x - mean) / sqrt(var + 1e-8), -clip, clip), in ``x``'s dtype."""
        mean = self.mean.to(x.dtype)
        std = torch.sqrt(self.var.to(x.dtype) + _VAR_EPSILON)
        return torch.clamp((x - mean) / std, -clip, clip)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """x / sqrt(var + 1e-8), not centred (for scaling rewards), in ``x``'s dtype."""
        return x / torch.sqrt(self.var.to(x.dtype) + _VAR_EPSILON)

    def extra_repr(self) -> str:
        """The element shape, for ``print(module)``."""
        return f"shape={self.shape}"
