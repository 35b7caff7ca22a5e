"""``rlfleet evaluate``: play a policy for some episodes, score it, film it."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.deploy.envs import make_env
from rlfleet.deploy.policy import Policy, env_action
from rlfleet.deploy.video import VideoWriter

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
    """Play ``episodes`` episodes; the first one is filmed when ``video`` is given (``.mp4`` or
    ``.gif``, rendered without a display, at the environment's frame rate)."""
    meta = policy.metadata
    writer = VideoWriter(video) if video is not None else None  # checks the suffix first
    env = make_env(meta.env_id, meta.preprocessing, env_config=meta.env_config, render=bool(video))
    if writer is not None:
        writer.fps = _fps(meta.preprocessing, env)
    rng = np.random.default_rng(seed)
    scores, lengths = [], []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            film = writer if episode == 0 else None
            total, steps, done = 0.0, 0, False
            while not done and steps < MAX_STEPS:
                if film is not None:
                    film.add(env.render())
                actions, _, _ = policy.act(np.asarray(obs)[None], greedy=greedy, rng=rng)
                obs, reward, terminated, truncated, _ = env.step(
                    env_action(actions[0], policy.action)
                )
                total += float(reward)
                steps += 1
                done = terminated or truncated
            if film is not None:
                film.add(env.render())  # where the episode ended
            scores.append(total)
            lengths.append(steps)
        path = str(writer.close()) if writer is not None else None
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    finally:
        env.close()
    return Evaluation(meta.env_id, "greedy" if greedy else "sampled", scores, lengths, path)


def _fps(prep: dict[str, Any], env: Any) -> float:
    """Frames per second that play the video at the game's speed: Atari's 60 over its frame
    skip, else the environment's ``render_fps`` (MuJoCo's is its control rate), else 30."""
    if prep.get("kind") == "atari":
        return 60 // prep.get("frame_skip", 1)
    fps = env.metadata.get("render_fps") or 30
    return float(fps)


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
