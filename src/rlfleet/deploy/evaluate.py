"""``rlfleet evaluate``: play a policy for some episodes, score it, film it."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.deploy.envs import make_env
from rlfleet.deploy.policy import Policy
from rlfleet.deploy.video import write_video

MAX_STEPS = 50_000  # per episode; Pong's longest games are under 20,000 agent steps


@dataclass
class Evaluation:
    """Scores of finished episodes (the game's own score, unclipped)."""

    env_id: str
    mode: str
    scores: list[float]
    lengths: list[int]
    video: str | None = None

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "episodes": len(self.scores),
            "mean": self.mean,
            "median": statistics.median(self.scores),
            "min": min(self.scores),
            "max": max(self.scores),
        }


def evaluate(
    policy: Policy,
    *,
    episodes: int = 10,
    greedy: bool = False,
    seed: int = 0,
    video: str | Path | None = None,
) -> Evaluation:
    """Play ``episodes`` episodes; the first one is filmed when ``video`` is given."""
    meta = policy.metadata
    env = make_env(meta.env_id, meta.preprocessing, render=video is not None)
    rng = np.random.default_rng(seed)
    scores, lengths, frames = [], [], []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            film = video is not None and episode == 0
            total, steps, done = 0.0, 0, False
            while not done and steps < MAX_STEPS:
                if film:
                    frames.append(env.render())
                actions, _, _ = policy.act(np.asarray(obs)[None], greedy=greedy, rng=rng)
                obs, reward, terminated, truncated, _ = env.step(int(actions[0]))
                total += float(reward)
                steps += 1
                done = terminated or truncated
            scores.append(total)
            lengths.append(steps)
    finally:
        env.close()
    path = None
    if video is not None:
        fps = (
            60 // meta.preprocessing.get("frame_skip", 1)
            if meta.preprocessing.get("kind") == "atari"
            else 30
        )
        path = str(write_video(frames, video, fps=fps))
    return Evaluation(meta.env_id, "greedy" if greedy else "sampled", scores, lengths, path)


def attach(evaluation: Evaluation, run: Any) -> None:
    """Record the evaluation on the run: metrics, ``evaluation/results.json``, the video."""
    summary = evaluation.to_dict()
    run.store.log_text(run.id, json.dumps(summary, indent=2), "evaluation/results.json")
    if evaluation.video:
        run.store.log_artifact(run.id, evaluation.video, "evaluation")
    import time

    from rlfleet.tracking.store import MetricPoint

    now = int(time.time() * 1000)
    points = [
        MetricPoint(f"evaluation_{key}_score", float(summary[key]), now, 0)
        for key in ("mean", "median", "min", "max")
    ]
    run.store.log_points(run.id, points)
