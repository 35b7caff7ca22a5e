"""Rollout workers: step a vector env with batched inference into preallocated arrays.

A :class:`RolloutWorker` is plain Python: the driver runs one in-process when
``num_workers`` is 0, and :mod:`rlfleet.impala.actors` wraps it as a Ray actor otherwise.
Rollouts are time-major: ``obs`` is ``(T + 1, B, ...)`` (the last observation seeds the next
rollout and gives the bootstrap value), everything else ``(T, B, ...)``. Actions are stored as
sampled (a Gaussian's unclipped sample, with its log-probability); the environment gets them
clipped to the action space's bounds.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from rlfleet.impala.config import config_class
from rlfleet.impala.cpu import flush_denormals
from rlfleet.impala.envs import autoreset_mode, make_vector_env
from rlfleet.impala.networks import build_network, inference_dtype
from rlfleet.impala.spaces import ActionSpec, action_spec

logger = logging.getLogger(__name__)

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class EnvSpec:
    """What the learner needs to know about a worker's environment."""

    obs_shape: tuple[int, ...]
    obs_dtype: str
    action: ActionSpec

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what checkpoints store, so a policy is rebuilt without its env)."""
        return {
            "obs_shape": list(self.obs_shape),
            "obs_dtype": self.obs_dtype,
            "action": self.action.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnvSpec:
        return cls(
            tuple(data["obs_shape"]), data["obs_dtype"], ActionSpec.from_dict(data["action"])
        )


def rollout_arrays(spec: EnvSpec, num_steps: int, num_envs: int) -> dict[str, np.ndarray]:
    """Zeroed time-major arrays for ``num_steps`` steps of ``num_envs`` environments."""
    return {
        "obs": np.zeros((num_steps + 1, num_envs, *spec.obs_shape), spec.obs_dtype),
        "actions": np.zeros((num_steps, num_envs, *spec.action.shape), spec.action.dtype),
        "rewards": np.zeros((num_steps, num_envs), np.float32),
        "dones": np.zeros((num_steps, num_envs), np.bool_),
        "mask": np.ones((num_steps, num_envs), np.bool_),
        "behaviour_log_probs": np.zeros((num_steps, num_envs), np.float32),
        "discounted_returns": np.zeros((num_steps, num_envs), np.float32),
        "bootstrap_values": np.zeros((num_steps, num_envs), np.float32),
    }


@dataclass
class Rollout:
    """One rollout of T steps of B environments, plus the episodes that ended in it.

    ``arrays`` holds ``obs`` (T+1, B, ...), ``actions`` (T, B, *action shape), ``rewards``
    (raw), ``dones`` and ``mask`` (False on the reset steps of NextStep-autoreset envs, which
    carry no action), ``behaviour_log_probs`` (T, B: the acting policy's log-probabilities of
    the actions, as it computed them) and ``discounted_returns`` (T, B: each environment's
    running discounted return, what reward normalisation scales by) and ``bootstrap_values``
    (T, B: on a step where an episode was cut short by a time limit, not ended, the value of
    the observation it was cut at; else 0).

    Time limits: an episode cut short is not a terminal state, so its last step's target must
    go on with the value of where it stopped. ``dones`` mark every episode end (so that no
    target reaches across it, nor across the masked reset step of a NextStep env); the actor
    records the value of the observation the episode was cut at (the step's own observation in
    NextStep envs such as CartPole's vector env, ``info["final_obs"]`` in SameStep ones) in
    ``bootstrap_values``, which the learner adds, discounted, to the step's reward.
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
        algorithm: str,
        config: dict[str, Any],
        worker_index: int,
        torch_threads: int | None = 1,
    ) -> None:
        cfg = config_class(algorithm).from_dict(config)
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        flush_denormals()
        torch.manual_seed(cfg.seed + 1000 * worker_index)
        num_threads = cfg.env_num_threads or max(1, round(cfg.num_cpus_per_worker))
        if worker_index == 0:  # in the driver process: let the env use every core
            num_threads = cfg.env_num_threads or (os.cpu_count() or 1)
        else:  # an actor: Ray copies this line into the trainer's log, with the node's address
            print(f"rollout actor {worker_index} on {socket.gethostname()}", flush=True)
        self.env, first_obs = make_vector_env(
            env_id,
            num_envs=cfg.num_envs_per_worker,
            seed=cfg.seed + 10_000 * worker_index,
            dim=cfg.model.dim,
            num_threads=num_threads,
            options=cfg.env_config,
            vectorization=cfg.env_vectorization,
        )
        self.spec = EnvSpec(
            obs_shape=tuple(self.env.single_observation_space.shape),
            obs_dtype=str(self.env.single_observation_space.dtype),
            action=action_spec(self.env.single_action_space),
        )
        self.model = build_network(
            self.spec.obs_shape,
            self.spec.action,
            cfg.model,
            obs_dtype=self.spec.obs_dtype,
            normalize_observations=cfg.normalize_observations,
        )
        dtype = inference_dtype(cfg.actor_dtype, image=self.model.image)
        self.model = self.model.to(dtype).eval()
        self.policy_version = -1
        self.gamma = cfg.gamma
        self._next_step_reset = autoreset_mode(self.env) == AutoresetMode.NEXT_STEP
        num_steps, num_envs = cfg.sample_batch_size, cfg.num_envs_per_worker
        self.arrays = rollout_arrays(self.spec, num_steps, num_envs)
        self.arrays["obs"][-1] = first_obs  # copied to obs[0] when sampling starts
        self._discounted = np.zeros(num_envs, np.float64)
        self._returns = np.zeros(num_envs, np.float64)
        self._lengths = np.zeros(num_envs, np.int64)
        self._was_done = np.zeros(num_envs, np.bool_)

    def get_spec(self) -> EnvSpec:
        """The environment's observation shape/dtype and action space."""
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
        obs, actions, log_probs = a["obs"], a["actions"], a["behaviour_log_probs"]
        obs[0] = obs[-1]
        returns: list[float] = []
        lengths: list[int] = []
        for t in range(actions.shape[0]):
            with torch.inference_mode():
                outputs = self.model(torch.from_numpy(obs[t]))[0].float()
                distribution = self.model.distribution(outputs)
                action = distribution.sample()
                log_probs[t] = distribution.log_prob(action).numpy()
            actions[t] = action.numpy()
            next_obs, reward, terminated, truncated, info = self.env.step(
                self.spec.action.for_env(actions[t])
            )
            obs[t + 1] = next_obs
            done = np.logical_or(terminated, truncated)
            a["rewards"][t], a["dones"][t] = reward, done
            a["bootstrap_values"][t] = 0.0
            cut = truncated & ~terminated
            if cut.any() and self._next_step_reset:  # the final observation is this step's
                a["bootstrap_values"][t, cut] = self._values(next_obs[cut])
            elif cut.any() and "final_obs" in info:
                a["bootstrap_values"][t, cut] = self._values(info["final_obs"][cut])
            self._discounted = self._discounted * self.gamma + reward
            a["discounted_returns"][t] = self._discounted
            self._discounted[done] = 0.0
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

    def _values(self, observations: np.ndarray) -> np.ndarray:
        """The policy's values of a few single observations (an object array of them)."""
        batch = np.stack(list(observations)).astype(self.spec.obs_dtype)
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch))[1].float().numpy()

    def close(self) -> None:
        """Close the environment."""
        self.env.close()
