"""MuJoCo benchmark: PPO (the presets rlfleet gives each task) on Hopper-v5, Walker2d-v5 and HalfCheetah-v5,
several seeds each, to 1M agent steps; the score, the time of each run, and the curves.

    .venv/bin/python benchmarks/ppo_mujoco.py                       # 3 envs x 3 seeds, 1M steps
    .venv/bin/python benchmarks/ppo_mujoco.py --envs Hopper-v5 --seeds 0 --steps 300000
    .venv/bin/python benchmarks/ppo_mujoco.py --config '{"lr": 0.0001}' --out outputs/try

Each run trains through the same code as ``rlfleet train --run PPO`` (the preset that run
gets), in this process (``num_workers`` 0) or with Ray actors on a private local Ray instance.
The score of a run is ``episode_reward_mean`` (the mean return of the last 100 training
episodes, stochastic policy) when it reaches the step budget. Writes into --out:
``summary.json`` (per run: score, wall time, steps/s; per env: mean, std, min, median),
``<env>.csv`` (every run's curve) and ``<env>.png`` (every seed's curve on one chart).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import statistics
import time
from pathlib import Path

from rlfleet.impala.config import PPOConfig, StopConfig
from rlfleet.impala.loop import train
from rlfleet.impala.presets import default_config

ENVS = ("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5")
GOALS = {"Hopper-v5": 2500, "Walker2d-v5": 2500, "HalfCheetah-v5": 2000}
"""Issue 13's goals at 1M agent steps."""


class Curve:
    """Collects (steps, seconds, reward) per iteration and prints a progress line."""

    def __init__(self, label: str, budget: int) -> None:
        self.label, self.budget = label, budget
        self.points: list[tuple[int, float, float]] = []

    def log_metrics(self, metrics, step=None) -> None:
        steps, seconds = int(metrics["timesteps_total"]), metrics["time_total_s"]
        self.points.append((steps, seconds, metrics["episode_reward_mean"]))
        rate = steps / max(seconds, 1e-9)
        left = (self.budget - steps) / max(rate, 1e-9)
        print(
            f"{self.label}: {steps:>9,} steps ({100 * steps / self.budget:3.0f}%)  "
            f"reward {metrics['episode_reward_mean']:8.1f}  {rate:5.0f} steps/s  "
            f"{seconds:5.0f}s, about {left:4.0f}s left",
            flush=True,
        )


def run_one(env_id: str, seed: int, steps: int, overrides: dict) -> tuple[dict, Curve]:
    config = PPOConfig.from_dict({**preset(env_id), **overrides, "seed": seed})
    curve = Curve(f"{env_id} seed {seed}", steps)
    start = time.perf_counter()
    result = train(env_id, config, StopConfig(timesteps_total=steps), metric_sink=curve)
    wall = time.perf_counter() - start
    return {
        "env": env_id,
        "seed": seed,
        "score": result["episode_reward_mean"],
        "timesteps_total": result["timesteps_total"],
        "wall_s": round(wall, 1),
        "steps_per_s": round(result["timesteps_total"] / wall),
    }, curve


def preset(env_id: str) -> dict:
    """What ``rlfleet train --run PPO --env ENV_ID`` gets on this small CPU machine."""
    return default_config(env_id, run="PPO", cpus=2, gpus=0)


def plot(env_id: str, curves: dict[int, Curve], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for seed, curve in sorted(curves.items()):
        axes.plot([p[0] for p in curve.points], [p[2] for p in curve.points], label=f"seed {seed}")
    if env_id in GOALS:
        axes.axhline(GOALS[env_id], color="grey", linestyle="--", label=f"goal {GOALS[env_id]}")
    axes.set_xlabel("agent steps")
    axes.set_ylabel("episode_reward_mean (last 100 episodes)")
    axes.set_title(f"rlfleet PPO on {env_id}, {len(curves)} seeds")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--config", default="{}", help="JSON overrides of the presets")
    parser.add_argument("--out", default="outputs/mujoco")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    overrides = json.loads(args.config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if any(PPOConfig.from_dict({**preset(e), **overrides}).num_workers for e in args.envs):
        import ray

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private, local-only instance
        ray.init(address="local", include_dashboard=False)
    runs, per_env = [], {}
    for env_id in args.envs:
        curves: dict[int, Curve] = {}
        for seed in args.seeds:
            run, curves[seed] = run_one(env_id, seed, args.steps, overrides)
            runs.append(run)
            print(json.dumps(run), flush=True)
        scores = [r["score"] for r in runs if r["env"] == env_id]
        walls = [r["wall_s"] for r in runs if r["env"] == env_id]
        per_env[env_id] = {
            "mean": round(statistics.fmean(scores), 1),
            "std": round(statistics.pstdev(scores), 1),
            "median": round(statistics.median(scores), 1),
            "min": round(min(scores), 1),
            "wall_s_median": statistics.median(walls),
            "wall_s_max": max(walls),
            "goal": GOALS.get(env_id),
        }
        with open(out / f"{env_id}.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["seed", "timesteps_total", "time_total_s", "episode_reward_mean"])
            for seed, curve in curves.items():
                writer.writerows([seed, *point] for point in curve.points)
        plot(env_id, curves, out / f"{env_id}.png")
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "config": {env_id: {**preset(env_id), **overrides} for env_id in args.envs},
        "steps": args.steps,
        "per_env": per_env,
        "runs": runs,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(per_env, indent=2))


if __name__ == "__main__":
    main()
