"""Checkpoints: one ``torch.save`` file holding model, optimizer, counters and config.

Everything besides tensors is plain dicts, lists, strings and numbers, so that files load with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class Counters:
    """Progress that continues across restores."""

    timesteps_total: int = 0
    """Agent steps sampled."""
    episodes_total: int = 0
    """Episodes finished."""
    training_iteration: int = 0
    """Iterations (metric reports) done."""
    time_total_s: float = 0.0
    """Seconds of training."""
    recent_returns: list[float] = field(default_factory=list)
    """Raw scores of the last (up to 100) finished episodes."""
    curve: list[list[float]] = field(default_factory=list)
    """The learning curve so far, one point per iteration (see :mod:`rlfleet.impala.plots`)."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds."""

    learner: dict[str, Any]
    counters: Counters
    config: dict[str, Any]
    env_id: str
    algorithm: str = "IMPALA"
    """The config's algorithm (``--run``)."""
    env_spec: dict[str, Any] | None = None
    """Observation shape and dtype and the action space (``EnvSpec.to_dict``), so that the
    policy is rebuilt without its environment; None in checkpoints from before it was kept."""


def save_checkpoint(directory: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint_<iteration>.pt`` in ``directory`` (atomically) and return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"checkpoint_{checkpoint.counters.training_iteration:06d}.pt"
    payload = {
        "format_version": FORMAT_VERSION,
        "learner": checkpoint.learner,
        "counters": asdict(checkpoint.counters),
        "config": checkpoint.config,
        "env_id": checkpoint.env_id,
        "algorithm": checkpoint.algorithm,
        "env_spec": checkpoint.env_spec,
    }
    partial = path.with_suffix(".pt.partial")
    torch.save(payload, partial)
    partial.replace(path)
    logger.info("saved checkpoint %s", path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a file written by :func:`save_checkpoint` (with ``weights_only=True``)."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not an rlfleet trainer checkpoint (format {FORMAT_VERSION})")
    return Checkpoint(
        learner=payload["learner"],
        counters=Counters(**payload["counters"]),
        config=payload["config"],
        env_id=payload["env_id"],
        algorithm=payload.get("algorithm", "IMPALA"),
        env_spec=payload.get("env_spec"),
    )
