"""A trained policy, loaded from a checkpoint of the built-in trainer, with its metadata."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlfleet.deploy.envs import action_meanings, make_env, preprocessing
from rlfleet.errors import RlfleetError

if TYPE_CHECKING:
    from rlfleet.runs.run import Run

CHECKPOINTS = "checkpoints"
METADATA_KEY = "rlfleet_policy"


@dataclass(frozen=True)
class PolicyMetadata:
    """What a user of an exported policy needs: its environment, observations and actions."""

    env_id: str
    obs_shape: list[int]
    obs_dtype: str
    num_actions: int
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
    run_id: str | None = None
    checkpoint: str | None = None
    timesteps_total: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyMetadata:
        return cls(**data)


class Policy:
    """The network of a checkpoint, on the CPU, in eval mode."""

    def __init__(self, model: torch.nn.Module, metadata: PolicyMetadata) -> None:
        self.model = model.eval()
        self.metadata = metadata

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, run_id: str | None = None) -> Policy:
        from rlfleet.impala.checkpoint import load_checkpoint
        from rlfleet.impala.config import ImpalaConfig
        from rlfleet.impala.networks import build_network, resolve_network_name

        try:
            checkpoint = load_checkpoint(path)
        except Exception as err:
            raise RlfleetError(f"{path} is not a checkpoint of rlfleet's trainer: {err}") from None
        config = ImpalaConfig.from_dict(checkpoint.config)
        prep = preprocessing(checkpoint.env_id, config.model.dim)
        env = make_env(checkpoint.env_id, prep)
        space = env.observation_space
        metadata = PolicyMetadata(
            env_id=checkpoint.env_id,
            obs_shape=list(space.shape),
            obs_dtype=str(space.dtype),
            num_actions=int(env.action_space.n),
            action_meanings=action_meanings(env),
            preprocessing=prep,
            network=resolve_network_name(space.shape, config.model),
            run_id=run_id,
            checkpoint=Path(path).name,
            timesteps_total=checkpoint.counters.timesteps_total,
        )
        env.close()
        model = build_network(space.shape, metadata.num_actions, config.model)
        model.load_state_dict(checkpoint.learner["model"])
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
    def act(
        self,
        observations: np.ndarray,
        *,
        greedy: bool = True,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actions, logits and values for a batch of observations."""
        logits, values = self.model(torch.as_tensor(observations))
        logits_np = logits.float().numpy()
        if greedy:
            actions = logits_np.argmax(axis=-1)
        else:
            rng = rng or np.random.default_rng()
            probs = torch.softmax(logits, dim=-1).double().numpy()
            actions = np.array([rng.choice(len(p), p=p / p.sum()) for p in probs])
        return actions, logits_np, values.float().numpy()


def _best(run: Run, names: list[str]) -> str:
    """The checkpoint saved at the iteration with the highest episode_reward_mean."""
    rewards = {p.step: p.value for p in run.get_metric_history("episode_reward_mean")}

    def reward(name: str) -> float:
        iteration = int(Path(name).stem.rsplit("_", 1)[-1])
        return rewards.get(iteration, float("-inf"))

    return max(names, key=reward)
