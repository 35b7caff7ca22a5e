"""The seed's entry script, for today's RLlib (new API stack) and rlfleet.

Takes the seed's arguments::

    python pong_rllib.py --run IMPALA --env PongNoFrameskip-v4 \
        --config '{"num_gpus": 1, "num_workers": 13}' \
        --stop '{"episode_reward_mean": 18, "time_total_s": 3600}'

and runs RLlib through Ray Tune on the cluster rlfleet submitted it to, logging
``episode_reward_mean`` and ``episodes_total`` to the run from an ``on_train_result`` callback
(see ``utils/callbacks.py``). The seed's old-API config keys are translated to the new ones.
"""

from __future__ import annotations

import argparse
import json
import os

import gymnasium as gym
import ray
from ray import tune
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.tune.registry import get_trainable_cls, register_env
from utils.callbacks import RewardToRun

SEED_ATARI = {"PongNoFrameskip-v4": "ALE/Pong-v5"}
SEED_STOP_KEYS = {
    "episode_reward_mean": "env_runners/episode_return_mean",
    "episodes_total": "env_runners/num_episodes_lifetime",
    "timesteps_total": "env_runners/num_env_steps_sampled_lifetime",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="IMPALA", help="RLlib algorithm, e.g. IMPALA or PPO")
    parser.add_argument("--env", default="PongNoFrameskip-v4", help="Gymnasium environment id")
    parser.add_argument("--config", type=json.loads, default={}, help="algorithm config (JSON)")
    parser.add_argument("--stop", type=json.loads, default={}, help="stop criteria (JSON)")
    parser.add_argument("--ray-address", default=None, help="default: the submitted cluster")
    return parser.parse_args()


def register_seed_env(env_id: str, dim: int) -> str:
    """Register the seed's NoFrameskip Atari id as ALE with RLlib's Atari preprocessing."""
    if env_id not in SEED_ATARI:
        return env_id

    def make(_config: dict) -> gym.Env:
        import ale_py
        from ray.rllib.env.wrappers.atari_wrappers import wrap_atari_for_new_api_stack

        gym.register_envs(ale_py)
        env = gym.make(SEED_ATARI[env_id], frameskip=1, repeat_action_probability=0.0)
        return wrap_atari_for_new_api_stack(env, dim=dim, framestack=4)

    register_env(env_id, make)
    return env_id


def build_config(args: argparse.Namespace) -> AlgorithmConfig:
    seed = dict(args.config)
    model = seed.pop("model", {})
    dim = int(model.get("dim", 64))
    config: AlgorithmConfig = get_trainable_cls(args.run).get_default_config()
    config = config.environment(register_seed_env(args.env, dim)).callbacks(RewardToRun)
    config = config.env_runners(
        num_env_runners=int(seed.pop("num_workers", 1)),
        rollout_fragment_length=seed.pop("sample_batch_size", "auto"),
        num_envs_per_env_runner=int(seed.pop("num_envs_per_worker", 1)),
    )
    config = config.learners(num_gpus_per_learner=float(seed.pop("num_gpus", 0)))
    if "train_batch_size" in seed:
        config = config.training(train_batch_size_per_learner=int(seed.pop("train_batch_size")))
    if "num_sgd_iter" in seed:
        config = config.training(num_epochs=int(seed.pop("num_sgd_iter")))
    seed.pop("num_data_loader_buffers", None)  # old-stack IMPALA only
    if seed:
        config = config.update_from_dict(seed)
    return config


def main() -> None:
    args = parse_args()
    ray.init(address=args.ray_address)
    stop = {SEED_STOP_KEYS.get(key, key): value for key, value in args.stop.items()}
    print("Algorithm config:", json.dumps(args.config), "stop:", json.dumps(stop), flush=True)
    tuner = tune.Tuner(
        args.run,
        param_space=build_config(args),
        run_config=tune.RunConfig(
            stop=stop,
            storage_path=os.path.abspath("./logs"),
            verbose=1,
        ),
    )
    results = tuner.fit()
    if results.errors:
        raise SystemExit(f"training failed: {results.errors[0]}")


if __name__ == "__main__":
    main()
