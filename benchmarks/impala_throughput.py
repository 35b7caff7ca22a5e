"""Pong throughput on this machine, in agent steps/s (1 step = 1 action = 4 emulator frames).

    .venv/bin/python benchmarks/impala_throughput.py [--bursts 5] [--burst-s 10]

(a) the environment alone: AtariVectorEnv with the same envs, threads and 42x42 preprocessing
    as training, random actions;
(b) rlfleet IMPALA training on Pong (presets.PONG_2CPU: 1 Ray actor + learner on the driver);
(c) optional (--one-process): the same config with num_workers 0 (no Ray).
Each figure is measured in short bursts; the median and best burst are printed, because other
work on the machine makes single measurements noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from rlfleet.impala.config import ImpalaConfig, StopConfig
from rlfleet.impala.envs import make_vector_env
from rlfleet.impala.loop import ImpalaTrainer
from rlfleet.impala.presets import PONG_2CPU

ENV_ID = "PongNoFrameskip-v4"


def env_alone(config: ImpalaConfig, bursts: int, burst_s: float) -> list[float]:
    """Random-action steps/s of the vector env a training actor would step."""
    env, _ = make_vector_env(
        ENV_ID,
        num_envs=config.num_envs_per_worker * max(config.num_workers, 1),
        dim=config.model.dim,
        num_threads=config.env_num_threads or (os.cpu_count() or 1),
        seed=0,
    )
    num_actions = int(env.single_action_space.n)
    rng = np.random.default_rng(0)
    figures = []
    try:
        for _ in range(bursts):
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < burst_s:
                env.step(rng.integers(0, num_actions, size=env.num_envs))
                steps += env.num_envs
            figures.append(steps / (time.perf_counter() - start))
    finally:
        env.close()
    return figures


def training(config: ImpalaConfig, bursts: int, burst_s: float) -> list[float]:
    """Sampled agent steps/s while learning, one figure per training iteration."""
    config.min_time_s_per_iteration = burst_s
    trainer = ImpalaTrainer(ENV_ID, config)
    try:
        trainer.train_iteration(StopConfig())  # warm-up: actors start, first updates
        return [trainer.train_iteration()["sample_throughput"] for _ in range(bursts)]
    finally:
        trainer.close()


def report(name: str, figures: list[float]) -> float:
    median = statistics.median(figures)
    bursts = ", ".join(f"{f:.0f}" for f in figures)
    print(f"{name:<42} median {median:6.0f} steps/s  best {max(figures):6.0f}  (bursts: {bursts})")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--burst-s", type=float, default=10.0)
    parser.add_argument("--config", default="{}", help="JSON overrides of presets.PONG_2CPU")
    parser.add_argument("--one-process", action="store_true", help="also measure num_workers 0")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    args = parser.parse_args()
    config = ImpalaConfig.from_dict({**PONG_2CPU, **json.loads(args.config)})
    print(f"config: {json.dumps(config.to_dict())}")

    env_steps = report(
        "(a) AtariVectorEnv alone, random actions", env_alone(config, args.bursts, args.burst_s)
    )

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private, local-only instance
    ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    try:
        train_steps = report(
            "(b) rlfleet IMPALA training (Ray actors)", training(config, args.bursts, args.burst_s)
        )
    finally:
        ray.shutdown()
    print(f"(b)/(a) = {train_steps / env_steps:.0%}")

    if args.one_process:
        local = ImpalaConfig.from_dict({**config.to_dict(), "num_workers": 0})
        report(
            "(c) rlfleet IMPALA training (one process)", training(local, args.bursts, args.burst_s)
        )


if __name__ == "__main__":
    main()
