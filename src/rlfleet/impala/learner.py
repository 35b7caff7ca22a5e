"""The learner: actor-critic updates on time-major train batches, for every algorithm.

One skeleton for IMPALA, APPO and PPO: the algorithm's targets (:mod:`rlfleet.impala.targets`:
V-trace or GAE) are computed once per batch, then the shared losses
(:mod:`rlfleet.impala.losses`) are minimised over shuffled minibatches for ``num_sgd_iter``
passes.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from rlfleet.impala.config import TrainerConfig
from rlfleet.impala.cpu import flush_denormals, keep_freed_memory
from rlfleet.impala.losses import approx_kl, policy_loss, value_loss
from rlfleet.impala.networks import build_network, channels_last_frames
from rlfleet.impala.normalization import RunningMeanStd
from rlfleet.impala.sampling import EnvSpec, Rollout, Weights, rollout_arrays
from rlfleet.impala.targets import targets_function

logger = logging.getLogger(__name__)


def learner_device(config: TrainerConfig) -> torch.device:
    """CUDA when the run asks for a GPU and one is visible, else CPU."""
    if config.num_gpus >= 1 and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


TARGETS_CHUNK = 512
"""Observations per forward pass when computing the targets: a whole Pong batch at once
converts 2,112 frames to 58 MB of floats, slower than chunks that stay in the CPU's cache."""


class BatchBuilder:
    """Preallocated train batch ``(T(+1), rollouts * B, ...)`` that rollouts are copied into."""

    def __init__(self, config: TrainerConfig, spec: EnvSpec) -> None:
        self.rollouts_per_batch = config.rollouts_per_batch()
        self.envs_per_rollout = config.num_envs_per_worker
        width = self.rollouts_per_batch * self.envs_per_rollout
        self.arrays = rollout_arrays(spec, config.sample_batch_size, width)
        self.tensors = {name: torch.from_numpy(array) for name, array in self.arrays.items()}
        self.filled = 0

    def add(self, rollout: Rollout) -> None:
        """Copy ``rollout`` into the next free columns."""
        columns = slice(
            self.filled * self.envs_per_rollout, (self.filled + 1) * self.envs_per_rollout
        )
        for name, array in self.arrays.items():
            array[:, columns] = rollout.arrays[name]
        self.filled += 1

    @property
    def full(self) -> bool:
        return self.filled == self.rollouts_per_batch

    def take(self, device: torch.device) -> dict[str, torch.Tensor]:
        """The full batch as tensors on ``device``; the builder starts a new batch."""
        self.filled = 0
        return {name: tensor.to(device, non_blocking=True) for name, tensor in self.tensors.items()}


class Learner:
    """Owns the network and optimizer; ``update`` takes one train batch."""

    def __init__(self, config: TrainerConfig, spec: EnvSpec, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.targets_function = targets_function(config)
        keep_freed_memory()
        flush_denormals()
        torch.manual_seed(config.seed)
        self.model = build_network(
            spec.obs_shape,
            spec.action,
            config.model,
            obs_dtype=spec.obs_dtype,
            normalize_observations=config.normalize_observations,
        ).to(device)
        self.return_norm = RunningMeanStd(()).to(device)
        """Running variance of the discounted return (reward normalisation)."""
        params = self.model.parameters()
        if config.optimizer == "adam":
            # The fused kernel updates every parameter in one pass (CPU and CUDA): with the
            # many small minibatches of Atari training, the optimizer step is a fair share.
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                params, lr=config.lr, eps=config.opt_eps, fused=True
            )
        else:
            self.optimizer = torch.optim.RMSprop(
                params, lr=config.lr, alpha=config.rmsprop_alpha, eps=config.opt_eps
            )
        self.version = 0
        self.steps_learned = 0
        self.lr = config.lr
        """The learning rate (what ``kl_target`` adapts)."""
        self._last_ratio: torch.Tensor | None = None
        self._shuffle = torch.Generator().manual_seed(config.seed)

    def weights(self) -> Weights:
        """Current network weights as numpy arrays (what actors load)."""
        return {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """``num_sgd_iter`` passes over ``batch`` in shuffled minibatches of
        ``minibatch_size`` steps; returns the last gradient step's statistics.

        The value targets and advantages are computed once, over the whole time-major batch,
        with the weights the update starts from, and held fixed through every pass (as PPO
        computes GAE once per batch). Recomputing them per minibatch lets the value function,
        fitted to these very steps in the previous passes, explain the returns away: the
        advantages left are noise, which advantage normalisation then scales up to full size.
        With the targets fixed, each step stands alone, so minibatches are drawn from all steps
        at random (as PPO does), not as whole env trajectories.
        """
        self._set_learning_rate()
        mask = batch["mask"]
        obs = self._network_input(batch["obs"])
        targets = self._targets(batch, obs)
        steps = {
            "obs": obs[:-1],  # the bootstrap observations only served the targets
            "actions": batch["actions"],
            "behaviour_log_probs": batch["behaviour_log_probs"],
            **targets,
        }
        valid = mask.flatten().nonzero().squeeze(-1)
        flat = {name: t.flatten(0, 1) for name, t in steps.items()}
        count = len(valid)
        size = self.config.minibatch_size if self.config.minibatch_size > 0 else max(count, 1)
        stats: dict[str, float] = {}
        kl_target = self.config.kl_target
        for sgd_iter in range(self.config.num_sgd_iter):
            order = torch.randperm(count, generator=self._shuffle, device="cpu").to(self.device)
            order = valid[order]
            kl_sum, minibatches = torch.zeros((), device=self.device), 0
            for start in range(0, count, size):
                chosen = order[start : start + size]
                last = sgd_iter == self.config.num_sgd_iter - 1 and start + size >= count
                stats = self._gradient_step(
                    {name: take_rows(t, chosen) for name, t in flat.items()}, report=last
                )
                if kl_target > 0 and self._last_ratio is not None:
                    kl_sum += approx_kl(self._last_ratio)
                    minibatches += 1
            if kl_target > 0 and minibatches:
                kl = (kl_sum / minibatches).item()
                bounds = (LR_RANGE[0] * self.config.lr, LR_RANGE[1] * self.config.lr)
                self.lr = adapted_lr(self.lr, kl, kl_target, bounds)
                self._set_learning_rate()
                stats["kl"] = kl
        if self.model.obs_norm is not None:
            # After the update, not before: the batch's log-probabilities were computed by the
            # actors with the statistics the update starts from, and PPO's ratio must start at 1.
            self.model.obs_norm.update(batch["obs"][:-1][mask])
        self.version += 1
        self.steps_learned += count
        stats["cur_lr"] = self.optimizer.param_groups[0]["lr"]
        stats["vf_explained_var"] = _explained_variance(
            targets["old_values"], targets["value_targets"], mask
        )
        return stats

    def _network_input(self, obs: torch.Tensor) -> torch.Tensor:
        """``(T + 1, B, ...)`` observations as the network takes them fastest: image frames
        stored channels-last, once per batch. Minibatches gathered from them stay so, and the
        network converts each to float in one contiguous pass; gathering float frames instead
        moves 4x the bytes (measured: 0.44 ms a minibatch of 64, a tenth of a gradient step)."""
        return channels_last_frames(obs) if self.model.image else obs

    def _rewards(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The rewards learned from: scaled by the discounted return's running standard
        deviation (``normalize_rewards``), then clipped (``reward_clip``)."""
        rewards = batch["rewards"]
        if self.config.normalize_rewards:
            self.return_norm.update(batch["discounted_returns"][batch["mask"]])
            rewards = self.return_norm.scale(rewards)
        if self.config.reward_clip > 0:
            rewards = rewards.clamp(-self.config.reward_clip, self.config.reward_clip)
        return rewards

    @torch.no_grad()
    def _targets(
        self, batch: dict[str, torch.Tensor], obs: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The algorithm's ``value_targets`` and ``advantages`` ``(T, B)`` under the current
        weights, and the values ``old_values`` ``(T, B)`` they were computed with, from ``obs``
        (what :meth:`_network_input` made of the batch's observations)."""
        cfg = self.config
        steps_plus_one, width = obs.shape[:2]
        chunks = [self.model(chunk) for chunk in obs.flatten(0, 1).split(TARGETS_CHUNK)]
        outputs = torch.cat([chunk_outputs for chunk_outputs, _ in chunks])
        values = torch.cat([chunk_values for _, chunk_values in chunks])
        outputs = outputs.view(steps_plus_one, width, -1)[:-1]
        values = values.view(steps_plus_one, width)
        target_log_probs = self.model.distribution(outputs).log_prob(batch["actions"])
        discounts = cfg.gamma * (~batch["dones"] & batch["mask"]).float()
        # an episode cut by a time limit goes on with the value of where it was cut
        rewards = self._rewards(batch) + cfg.gamma * batch["bootstrap_values"]
        targets = self.targets_function(
            cfg,
            target_log_probs=target_log_probs,
            behaviour_log_probs=batch["behaviour_log_probs"],
            rewards=rewards,
            discounts=discounts,
            values=values[:-1],
            bootstrap_value=values[-1],
        )
        return {
            "value_targets": targets.value_targets,
            "advantages": targets.advantages,
            "old_values": values[:-1],
        }

    def _set_learning_rate(self) -> None:
        lr = self.lr
        if self.config.lr_decay_steps > 0:
            lr *= max(0.0, 1.0 - self.steps_learned / self.config.lr_decay_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _gradient_step(
        self, minibatch: dict[str, torch.Tensor], *, report: bool
    ) -> dict[str, float]:
        """One gradient step on a flat minibatch of steps (every tensor ``(N, ...)``); its
        statistics when ``report`` (reading them costs a tenth of a step, so only the update's
        last step reports)."""
        cfg = self.config
        outputs, values = self.model(minibatch["obs"])
        distribution = self.model.distribution(outputs)
        policy = policy_loss(
            distribution.log_prob(minibatch["actions"]),
            minibatch["behaviour_log_probs"],
            minibatch["advantages"],
            clip_param=cfg.clip_param,
            normalize_advantages=cfg.normalize_advantages,
        )
        vf_loss = value_loss(
            values,
            minibatch["value_targets"],
            minibatch["old_values"],
            vf_clip_param=getattr(cfg, "vf_clip_param", 0.0),
        )
        entropy = distribution.entropy().mean()
        self._last_ratio = policy.ratio
        loss = policy.loss + cfg.vf_loss_coeff * vf_loss - cfg.entropy_coeff * entropy

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self.optimizer.step()
        if not report:
            return {}
        clip_fraction = 0.0
        if cfg.clip_param > 0:
            clip_fraction = ((policy.ratio - 1.0).abs() > cfg.clip_param).float().mean().item()
        stats = {
            "policy_loss": policy.loss.item(),
            "vf_loss": vf_loss.item(),
            "entropy": entropy.item(),
            "grad_gnorm": grad_norm.item(),
            "mean_rho": policy.ratio.mean().item(),
            "clip_fraction": clip_fraction,
        }
        if self.model.action.kind == "box":
            stats["action_std_mean"] = self.model.log_std.exp().mean().item()
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Model, optimizer and update count (for checkpoints)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "version": self.version,
            "steps_learned": self.steps_learned,
            "return_norm": self.return_norm.state_dict(),
            "lr": self.lr,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.version = int(state["version"])
        self.steps_learned = int(state.get("steps_learned", 0))
        self.lr = float(state.get("lr", self.config.lr))
        if "return_norm" in state:
            self.return_norm.load_state_dict(state["return_norm"])


LR_RANGE = (0.01, 4.0)
"""Where ``kl_target`` may take the learning rate, in multiples of the configured ``lr``
(rl_games' absolute [1e-6, 1e-2] took Pong's small network, minibatches of 64, to 1e-2 within
three updates while the early policy hardly moved, and it stopped learning)."""


def adapted_lr(lr: float, kl: float, kl_target: float, bounds: tuple[float, float]) -> float:
    """The learning rate after a pass whose policy change was ``kl``: 1.5 times lower above
    twice ``kl_target``, 1.5 times higher below half of it, the same in between; within
    ``bounds``."""
    if kl > 2.0 * kl_target:
        lr /= 1.5
    elif kl < 0.5 * kl_target:
        lr *= 1.5
    return min(max(lr, bounds[0]), bounds[1])


def take_rows(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``tensor[index]`` (rows along the first dimension), in the memory layout it had.

    Copied with ``index_select`` on a 2-D view of the rows: for a minibatch of 64 Pong frames
    stored channels-last that takes 12 us, where advanced indexing takes 250 us and
    ``index_select`` on the 4-D tensor 150 us (and returns it in the other layout).
    """
    if tensor.dim() == 4 and tensor.is_contiguous(memory_format=torch.channels_last):
        pixels = tensor.movedim(1, -1)  # (N, H, W, C), contiguous
        rows = pixels.flatten(1).index_select(0, index)
        return rows.view(-1, *pixels.shape[1:]).movedim(-1, 1)
    return tensor.index_select(0, index)


def _explained_variance(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(target - predicted) / Var(target) over the steps in ``mask`` (1: perfect, 0: no
    better than a constant, as RLlib's ``vf_explained_var``)."""
    weight = mask.float() / mask.sum().clamp(min=1)
    target_mean = (target * weight).sum()
    target_var = ((target - target_mean).pow(2) * weight).sum()
    error = target - predicted
    error_var = ((error - (error * weight).sum()).pow(2) * weight).sum()
    return (1.0 - error_var / target_var).item() if target_var > 0 else float("nan")
