"""Rollout workers: step a vector env with batched inference into preallocated arrays.

A :class:`RolloutWorker` is plain Python: the driver runs one in-process when
``num_workers`` is 0, and :mod:`rlfleet.impala.actors` wraps it as a Ray actor otherwise.
Rollouts are time-major: ``obs`` is ``(T + 1, B, ...)`` (the last observation seeds the next
rollout and gives the bootstrap value), everything else ``(T, B, ...)``.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from rlfleet.impala.config import ImpalaConfig
from rlfleet.impala.cpu import flush_denormals
from rlfleet.impala.envs import autoreset_mode, make_vector_env
from rlfleet.impala.networks import build_network, inference_dtype

logger = logging.getLogger(__name__)

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class EnvSpec:
    """What the learner needs to know about a worker's environment."""

    obs_shape: tuple[int, ...]
    obs_dtype: str
    num_actions: int


@dataclass
class Rollout:
    """One rollout of T steps of B environments, plus the episodes that ended in it.

    ``arrays`` holds ``obs`` (T+1, B, ...), ``actions``, ``rewards`` (raw), ``dones`` and
    ``mask`` (False on the reset steps of NextStep-autoreset envs, which carry no action),
    and ``behaviour_logits`` (T, B, A).
    """

    arrays: dict[str, np.ndarray]
    num_steps: int
    policy_version: int
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)


class RolloutWorker:
    """Owns a vector env and a copy of the policy; ``sample`` returns one :class:`Rollout`."""

    def __init__(
        self,
        env_id: str,
        config: dict[str, Any],
        worker_index: int,
        torch_threads: int | None = 1,
    ) -> None:
        cfg = ImpalaConfig.from_dict(config)
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        flush_denormals()
        torch.manual_seed(cfg.seed + 1000 * worker_index)
        num_threads = cfg.env_num_threads or max(1, round(cfg.num_cpus_per_worker))
        if worker_index == 0:  # in the driver process: let the env use every core
            num_threads = cfg.env_num_threads or (os.cpu_count() or 1)
        self.env, first_obs = make_vector_env(
            env_id,
            num_envs=cfg.num_envs_per_worker,
            seed=cfg.seed + 10_000 * worker_index,
            dim=cfg.model.dim,
            num_threads=num_threads,
            options=cfg.env_config,
        )
        self.spec = EnvSpec(
            obs_shape=tuple(self.env.single_observation_space.shape),
            obs_dtype=str(self.env.single_observation_space.dtype),
            num_actions=int(self.env.single_action_space.n),
        )
        self.model = build_network(self.spec.obs_shape, self.spec.num_actions, cfg.model)
        self.model = self.model.to(inference_dtype(cfg.actor_dtype)).eval()
        self.policy_version = -1
        self._next_step_reset = autoreset_mode(self.env) == AutoresetMode.NEXT_STEP
        num_steps, num_envs = cfg.sample_batch_size, cfg.num_envs_per_worker
        self.arrays = {
            "obs": np.zeros((num_steps + 1, num_envs, *self.spec.obs_shape), self.spec.obs_dtype),
            "actions": np.zeros((num_steps, num_envs), np.int64),
            "rewards": np.zeros((num_steps, num_envs), np.float32),
            "dones": np.zeros((num_steps, num_envs), np.bool_),
            "mask": np.ones((num_steps, num_envs), np.bool_),
            "behaviour_logits": np.zeros((num_steps, num_envs, self.spec.num_actions), np.float32),
        }
        self.arrays["obs"][-1] = first_obs  # copied to obs[0] when sampling starts
        self._returns = np.zeros(num_envs, np.float64)
        self._lengths = np.zeros(num_envs, np.int64)
        self._was_done = np.zeros(num_envs, np.bool_)

    def get_spec(self) -> EnvSpec:
        """The environment's observation shape/dtype and number of actions."""
        return self.spec

    def set_weights(self, weights: Weights, version: int) -> None:
        """Load policy weights unless this version is already loaded."""
        if version != self.policy_version:
            with warnings.catch_warnings():  # arrays read from Ray's object store are read-only
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                state = {name: torch.from_numpy(value) for name, value in weights.items()}
            self.model.load_state_dict(state)  # copies into the model's own tensors
            self.policy_version = version

    def sample(self, weights: Weights | None = None, version: int = -1) -> Rollout:
        """Step all environments T times with the latest policy and return the rollout."""
        if weights is not None:
            self.set_weights(weights, version)
        a = self.arrays
        obs, actions, logits_out = a["obs"], a["actions"], a["behaviour_logits"]
        obs[0] = obs[-1]
        returns: list[float] = []
        lengths: list[int] = []
        for t in range(actions.shape[0]):
            with torch.inference_mode():
                logits = self.model(torch.from_numpy(obs[t]))[0].float()
                action = torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(-1)
            actions[t] = action.numpy()
            logits_out[t] = logits.numpy()
            next_obs, reward, terminated, truncated, _ = self.env.step(actions[t])
            obs[t + 1] = next_obs
            done = np.logical_or(terminated, truncated)
            a["rewards"][t], a["dones"][t] = reward, done
            if self._next_step_reset:
                # A NextStep env spends the step after an episode end on its reset.
                a["mask"][t] = ~self._was_done
                self._was_done = done
            self._returns += reward
            self._lengths += a["mask"][t]
            if done.any():
                returns.extend(self._returns[done].tolist())
                lengths.extend(self._lengths[done].tolist())
                self._returns[done] = 0.0
                self._lengths[done] = 0
        return Rollout(
            arrays=a,
            num_steps=int(a["mask"].sum()),
            policy_version=self.policy_version,
            episode_returns=returns,
            episode_lengths=lengths,
        )

    def close(self) -> None:
        """Close the environment."""
        self.env.close()
