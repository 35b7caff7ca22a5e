"""A trained policy, loaded from a checkpoint of the built-in trainer, with its metadata.

The network is rebuilt from the observation and action spaces the checkpoint records
(``env_spec``), without the environment, so that serving a policy needs no environment code;
only checkpoints from before those were recorded build the environment to learn them.

Actions by the action space's kind (:class:`rlfleet.impala.spaces.ActionSpec`):

- ``discrete``: the policy outputs logits ``(N, n)``; an action is an int.
- ``multi_discrete``: the policy outputs the concatenated logits of one categorical per entry of
  ``nvec`` ``(N, sum(nvec))``; an action is ``K = len(nvec)`` ints.
- ``box``: the policy outputs the mean ``(N, D)`` of a diagonal Gaussian (``D`` the number of
  the space's elements) whose log standard deviation ``log_std`` ``(D,)`` does not depend on
  the observation; an action is the mean (greedy) or ``mean + exp(log_std) * N(0, 1)``
  (sampled), clipped to the space's bounds and shaped as the space.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlfleet.deploy.envs import action_meanings, make_env, preprocessing
from rlfleet.errors import RlfleetError
from rlfleet.impala.spaces import ActionSpec

if TYPE_CHECKING:
    from rlfleet.impala.sampling import EnvSpec
    from rlfleet.runs.run import Run

CHECKPOINTS = "checkpoints"
METADATA_KEY = "rlfleet_policy"


def describe_outputs(action: ActionSpec) -> dict[str, str]:
    """What the policy's (and the exported files') outputs are, in order, for ``action``."""
    value = "(batch,) state value"
    if action.kind == "discrete":
        return {
            "logits": f"(batch, {action.n}) unnormalised log-probabilities; act = argmax, or "
            "sample from softmax",
            "value": value,
        }
    if action.kind == "multi_discrete":
        return {
            "logits": f"(batch, {action.num_outputs}) the logits of one categorical per action "
            f"entry, concatenated (split them by action_space.nvec = {list(action.nvec)}); "
            "entry k of the action = argmax of its part, or a sample from its softmax",
            "value": value,
        }
    return {
        "mean": f"(batch, {action.num_outputs}) the mean of the diagonal Gaussian policy, "
        "unclipped; act = clip(mean, low, high) (action_space.low/high, flattened), reshaped "
        f"to action_space.shape = {list(action.shape)}; to sample, add exp(log_std) * N(0, 1) "
        "before clipping",
        "value": value,
    }


@dataclass(frozen=True)
class PolicyMetadata:
    """What a user of an exported policy needs: its environment, observations and actions."""

    env_id: str
    obs_shape: list[int]
    obs_dtype: str
    num_actions: int | None
    """The number of actions of a Discrete action space; None for the other kinds (read
    ``action_space``), so that code written for discrete policies fails instead of misreading
    a multi-discrete or continuous policy's outputs."""
    action_meanings: list[str] | None
    preprocessing: dict[str, Any]
    network: str
    outputs: dict[str, str] = field(
        default_factory=lambda: {
            "logits": "(batch, num_actions) unnormalised log-probabilities; act = argmax, or "
            "sample from softmax",
            "value": "(batch,) state value",
        }
    )
    """The policy's outputs, in order, and what each one is (see :func:`describe_outputs`)."""
    run_id: str | None = None
    checkpoint: str | None = None
    timesteps_total: int | None = None
    action_space: dict[str, Any] | None = None
    """The action space (``ActionSpec.to_dict()``: kind, shape, n, nvec, low, high); None in
    metadata written before it was kept (those policies are discrete)."""
    algorithm: str = "IMPALA"
    """The algorithm that trained the policy (IMPALA, APPO or PPO)."""
    env_config: dict[str, Any] = field(default_factory=dict)
    """The keyword arguments the environment was made with (the run's ``env_config``)."""
    log_std: list[float] | None = None
    """Box actions: the Gaussian's log standard deviation, one per element of the action."""

    @property
    def action(self) -> ActionSpec:
        """The action space as an :class:`ActionSpec`."""
        if self.action_space is None:
            return ActionSpec("discrete", (), n=int(self.num_actions or 0))
        return ActionSpec.from_dict(self.action_space)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyMetadata:
        """From :meth:`to_dict`'s form; keys it does not know (from a newer rlfleet) are
        left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Policy:
    """The network of a checkpoint, on the CPU, in eval mode."""

    def __init__(self, model: torch.nn.Module, metadata: PolicyMetadata) -> None:
        self.model = model.eval()
        self.metadata = metadata
        self.action = metadata.action
        """The action space."""

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, run_id: str | None = None) -> Policy:
        """The policy of a checkpoint file of the built-in trainer.

        Raises:
            RlfleetError: the file is not such a checkpoint.
        """
        from rlfleet.impala.checkpoint import load_checkpoint
        from rlfleet.impala.config import config_class
        from rlfleet.impala.networks import build_network, resolve_network_name
        from rlfleet.impala.sampling import EnvSpec

        try:
            checkpoint = load_checkpoint(path)
            config = config_class(checkpoint.algorithm).from_dict(checkpoint.config)
        except Exception as err:
            raise RlfleetError(f"{path} is not a checkpoint of rlfleet's trainer: {err}") from None
        prep = preprocessing(checkpoint.env_id, config.model.dim, config.env_config)
        meanings = None
        if checkpoint.env_spec is not None:
            spec = EnvSpec.from_dict(checkpoint.env_spec)
            if prep["kind"] == "atari":  # ALE is installed with rlfleet: no user code needed
                env = make_env(checkpoint.env_id, prep)
                meanings = action_meanings(env)
                env.close()
        else:  # a checkpoint from before env_spec was kept: ask the environment
            spec, meanings = _spec_of_env(checkpoint.env_id, prep, config.env_config)
        model = build_network(
            spec.obs_shape,
            spec.action,
            config.model,
            obs_dtype=spec.obs_dtype,
            normalize_observations=config.normalize_observations,
        )
        model.load_state_dict(checkpoint.learner["model"])
        box = spec.action.kind == "box"
        metadata = PolicyMetadata(
            env_id=checkpoint.env_id,
            obs_shape=list(spec.obs_shape),
            obs_dtype=spec.obs_dtype,
            num_actions=spec.action.n if spec.action.kind == "discrete" else None,
            action_meanings=meanings,
            preprocessing=prep,
            network=resolve_network_name(spec.obs_shape, config.model, obs_dtype=spec.obs_dtype),
            outputs=describe_outputs(spec.action),
            run_id=run_id,
            checkpoint=Path(path).name,
            timesteps_total=checkpoint.counters.timesteps_total,
            action_space=spec.action.to_dict(),
            algorithm=checkpoint.algorithm,
            env_config=dict(config.env_config),
            log_std=model.log_std.detach().float().tolist() if box else None,
        )
        return cls(model, metadata)

    @classmethod
    def from_run(cls, run: Run, *, which: str = "last") -> Policy:
        """The run's ``last`` checkpoint, or its ``best`` (highest reward when it was saved)."""
        names = sorted(
            p for p in run.store.list_artifacts(run.id, CHECKPOINTS) if p.endswith(".pt")
        )
        if not names:
            raise RlfleetError(
                f"run {run.id} has no checkpoint (it is not a run of `rlfleet train`, or it "
                "ended before its first one)."
            )
        name = names[-1] if which == "last" else _best(run, names)
        local = run.store.download_artifacts(run.id, name, tempfile.mkdtemp(prefix="rlfleet-"))
        return cls.from_checkpoint(local, run_id=run.id)

    @torch.inference_mode()
    def forward(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The policy's outputs (logits, or the Gaussian's mean) and values, float32 arrays."""
        outputs, values = self.model(torch.as_tensor(np.asarray(observations)))
        return outputs.float().numpy(), values.float().numpy()

    def choose(
        self, outputs: np.ndarray, *, greedy: bool = True, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Actions for policy ``outputs`` ``(N, P)``: ints ``(N,)`` (discrete), ints ``(N, K)``
        (multi-discrete) or float32 ``(N, *shape)`` within the bounds (box); the most likely
        ones (the mean, for box), or samples drawn with ``rng``."""
        return choose_actions(self.action, outputs, self.metadata.log_std, greedy=greedy, rng=rng)

    def act(
        self,
        observations: np.ndarray,
        *,
        greedy: bool = True,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actions (see :meth:`choose`), policy outputs (logits, or the Gaussian's mean) and
        values for a batch of observations."""
        outputs, values = self.forward(observations)
        return self.choose(outputs, greedy=greedy, rng=rng), outputs, values


def choose_actions(
    action: ActionSpec,
    outputs: np.ndarray,
    log_std: list[float] | np.ndarray | None = None,
    *,
    greedy: bool = True,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Actions of ``action``'s kind for policy ``outputs`` ``(N, P)`` (see :meth:`Policy.choose`);
    ``log_std`` is the Gaussian's, needed to sample box actions."""
    outputs = np.asarray(outputs, np.float32)
    if not greedy:
        rng = rng or np.random.default_rng()
    if action.kind == "discrete":
        return outputs.argmax(axis=-1) if greedy else sample_categorical(outputs, rng)
    if action.kind == "multi_discrete":
        parts = np.split(outputs, np.cumsum(action.nvec)[:-1], axis=-1)
        pick = (lambda p: p.argmax(axis=-1)) if greedy else (lambda p: sample_categorical(p, rng))
        return np.stack([pick(part) for part in parts], axis=-1).astype(np.int64)
    mean = outputs
    if not greedy:
        if log_std is None:
            raise RlfleetError("sampling box actions needs the policy's log_std.")
        std = np.exp(np.asarray(log_std, np.float32))
        mean = mean + std * rng.standard_normal(mean.shape).astype(np.float32)
    return action.for_env(mean.astype(np.float32))


def sample_categorical(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``logits`` ``(N, A)``, drawn from its softmax (int64 ``(N,)``)."""
    logits = np.asarray(logits, np.float64)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    cumulative = np.cumsum(probs, axis=-1)
    draws = rng.random((logits.shape[0], 1)) * cumulative[:, -1:]
    picked = (cumulative <= draws).sum(axis=-1)
    return np.minimum(picked, logits.shape[-1] - 1).astype(np.int64)


def env_action(action: np.ndarray | int | list[Any], spec: ActionSpec) -> Any:
    """One action (a row of :meth:`Policy.choose`, or an endpoint's answer) as ``env.step``
    takes it: an int, an int64 array, or a float32 array of the space's shape."""
    if spec.kind == "discrete":
        return int(np.asarray(action).item())
    if spec.kind == "multi_discrete":
        return np.asarray(action, np.int64).reshape(spec.shape)
    return np.asarray(action, np.float32).reshape(spec.shape)


def _spec_of_env(
    env_id: str, prep: dict[str, Any], env_config: dict[str, Any]
) -> tuple[EnvSpec, list[str] | None]:
    """``(EnvSpec, action meanings)`` of the environment itself (old checkpoints)."""
    from rlfleet.impala.sampling import EnvSpec
    from rlfleet.impala.spaces import action_spec

    env = make_env(env_id, prep, env_config=env_config)
    try:
        space = env.observation_space
        spec = EnvSpec(tuple(space.shape), str(space.dtype), action_spec(env.action_space))
        return spec, action_meanings(env)
    finally:
        env.close()


def _best(run: Run, names: list[str]) -> str:
    """The checkpoint saved at the iteration with the highest episode_reward_mean."""
    rewards = {p.step: p.value for p in run.get_metric_history("episode_reward_mean")}

    def reward(name: str) -> float:
        iteration = int(Path(name).stem.rsplit("_", 1)[-1])
        return rewards.get(iteration, float("-inf"))

    return max(names, key=reward)
