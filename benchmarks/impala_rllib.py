"""RLlib's IMPALA (new API stack) on Pong: agent steps sampled per second while training.

Runs inside the venv that ``benchmarks/impala_throughput.py`` makes for RLlib (it imports
nothing from rlfleet). One setting per call; the last line printed is a JSON object::

    benchmarks/.rllib-venv/bin/python benchmarks/impala_rllib.py \\
        --env-runners 1 --envs-per-runner 4 --dim 64 --warmup-s 60 --measure-s 90

The environment is ALE Pong with frameskip 1 in the emulator and RLlib's own
``wrap_atari_for_new_api_stack`` (frameskip 4 with max-pool, grayscale, resize to ``--dim``,
30 no-ops, 4-frame stack), rewards clipped by RLlib. Everything fits a 2-CPU Ray instance: the
learner runs in this process (``num_learners`` 0), each env runner reserves ``--runner-cpus``.
The figure is the growth of ``num_env_steps_sampled_lifetime`` between the first result after
``--warmup-s`` and the last one before ``--warmup-s + --measure-s`` (one env step = one agent
step = 4 frames).
"""

from __future__ import annotations

import argparse
import json
import os
import time


def make_pong(config: dict) -> object:
    import ale_py
    import gymnasium as gym
    from ray.rllib.env.wrappers.atari_wrappers import wrap_atari_for_new_api_stack

    gym.register_envs(ale_py)
    env = gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0)
    return wrap_atari_for_new_api_stack(env, dim=config["dim"], framestack=4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-runners", type=int, default=1)
    parser.add_argument("--envs-per-runner", type=int, default=4)
    parser.add_argument("--runner-cpus", type=float, default=1.0)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--rollout", type=int, default=50, help="rollout_fragment_length")
    parser.add_argument("--train-batch", type=int, default=500)
    parser.add_argument("--warmup-s", type=float, default=60.0)
    parser.add_argument("--measure-s", type=float, default=90.0)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()

    import ray
    from ray.rllib.algorithms.impala import IMPALAConfig
    from ray.tune.registry import register_env

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=True)
    register_env("rllib-pong", make_pong)
    config = (
        IMPALAConfig()
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .environment("rllib-pong", env_config={"dim": args.dim}, clip_rewards=True)
        .env_runners(
            num_env_runners=args.env_runners,
            num_envs_per_env_runner=args.envs_per_runner,
            num_cpus_per_env_runner=args.runner_cpus,
            rollout_fragment_length=args.rollout,
        )
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=args.train_batch)
        .fault_tolerance(restart_failed_env_runners=False)
        .reporting(min_time_s_per_iteration=5)
    )
    algo = config.build_algo()
    start = time.perf_counter()
    points: list[tuple[float, int, int]] = []
    try:
        while time.perf_counter() - start < args.warmup_s + args.measure_s:
            result = algo.train()
            now = time.perf_counter() - start
            sampled = int(result["env_runners"].get("num_env_steps_sampled_lifetime", 0))
            trained = int(
                result.get("learners", {})
                .get("__all_modules__", {})
                .get("num_env_steps_trained_lifetime", 0)
            )
            points.append((now, sampled, trained))
            print(f"t={now:6.1f}s sampled={sampled:>9,} trained={trained:>9,}", flush=True)
    finally:
        algo.stop()
        ray.shutdown()
    measured = [p for p in points if p[0] >= args.warmup_s]
    summary = {
        "env_runners": args.env_runners,
        "envs_per_runner": args.envs_per_runner,
        "dim": args.dim,
        "sample_steps_per_s": None,
        "train_steps_per_s": None,
    }
    if len(measured) >= 2:
        (t0, s0, l0), (t1, s1, l1) = measured[0], measured[-1]
        summary["sample_steps_per_s"] = (s1 - s0) / (t1 - t0)
        summary["train_steps_per_s"] = (l1 - l0) / (t1 - t0)
        summary["measured_s"] = t1 - t0
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
