"""Tested ``--config`` presets (plain dicts, as they would be passed on the command line), and
the rule that picks one when a run gives no ``--config`` (:func:`default_config`)."""

from __future__ import annotations

from typing import Any

SMALL_MACHINE_CPUS = 4
"""A machine with at most this many cores (and no GPU) is small: Pong gets PONG_2CPU there."""

PONG_2CPU: dict[str, Any] = {
    "num_workers": 1,
    "num_envs_per_worker": 64,
    "env_num_threads": 2,
    "sample_batch_size": 32,
    "train_batch_size": 2048,
    "minibatch_size": 64,
    "num_sgd_iter": 3,
    "lr": 5e-4,
    "opt_eps": 1e-5,
    "grad_clip": 0.5,
    "entropy_coeff": 0.01,
    "clip_param": 0.1,
    "normalize_advantages": True,
    "vtrace_lambda": 0.95,
    "model": {"dim": 42, "network": "fast42"},
    "min_time_s_per_iteration": 10,
}
"""Pong on a 2-core CPU-only machine: one actor stepping 64 emulators in 2 native threads,
a learner on the driver; the fast42 network keeps inference + learning cheap next to the
emulators. The update is APPO-style (PPO's clip, normalised advantages, gradient norm clipped
at 0.5), and it is the number of small gradient steps per sample that makes Pong learn in few
steps: 3 passes in shuffled minibatches of 64 (96 Adam steps of 5e-4 per 2,048 agent steps).
With minibatches of 320 and 2 passes (8 steps per 1,280), Pong stayed at -20 for 1.8M steps;
with 2 passes of 64 it climbs at about half the speed of 3. Adam's epsilon is 1e-5 (as
CleanRL's and Baselines' PPO on Atari): with PyTorch's 1e-8, seed 2's network died in its first
two updates (the value's explained variance 0.00 from 40k agent steps on, the policy the same in
every state) and it stayed at -20 for 1.5M steps; with 1e-5 it learns like the others (-11.75 at
1.5M; benchmarks/impala_pong.py --seeds, 2026-12-06). Single runs before that reached 18 after
2.5-2.7M agent steps (15-17 minutes through the platform); the measured runs are in the README."""

CARTPOLE: dict[str, Any] = {
    "num_envs_per_worker": 32,
    "sample_batch_size": 20,
    "train_batch_size": 640,
    "lr": 1e-3,
    "min_time_s_per_iteration": 1.0,
    "model": {"vf_share_layers": True},
}
"""CartPole-v1 to a mean reward of 150 in about 10 seconds (any ``num_workers``). IMPALA with
the value function sharing the policy's layers, as this preset was tuned (with separate MLPs
a 2-actor run collapsed from 250 to 9 once in CI's node-failure test)."""


PPO_CARTPOLE: dict[str, Any] = {
    "num_envs_per_worker": 8,
    "sample_batch_size": 128,
    "num_sgd_iter": 4,
    "minibatch_size": 256,
    "lr": 2.5e-4,
    "min_time_s_per_iteration": 2.0,
}
"""PPO on CartPole-v1 (CleanRL's ppo.py settings, 8 envs): 475 after about 250k agent steps,
20 seconds in one process on a 2-core machine (tests/impala/test_algorithms.py)."""


PPO_MUJOCO: dict[str, Any] = {
    "num_workers": 0,
    "num_envs_per_worker": 8,
    "sample_batch_size": 256,
    "num_sgd_iter": 10,
    "minibatch_size": 64,
    "lr": 3e-4,
    "lr_decay_steps": 1_000_000,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "entropy_coeff": 0.0,
    "normalize_observations": True,
    "normalize_rewards": True,
    "reward_clip": 10.0,
    "min_time_s_per_iteration": 5.0,
}
"""PPO for MuJoCo locomotion (Hopper, Walker2d; HalfCheetah: PPO_HALFCHEETAH), after CleanRL's
ppo_continuous_action.py: 2,048 steps per update (8 envs x 256), 10 epochs of minibatches of
64, Adam 3e-4 annealed over 1M steps, observations and rewards normalised, no entropy bonus;
time-limit truncations bootstrapped. In one process on a 2-core machine, 3 seeds, score at 1M
agent steps (benchmarks/ppo_mujoco.py, 2026-12-06): Hopper 2,620 +- 571 (worst 1,899), Walker2d
3,422 +- 490 (worst 2,798), HalfCheetah 1,795 +- 18 (see PPO_HALFCHEETAH); 5-7.5 minutes a run. Sampling in the
driver (num_workers 0), as measured; actors on worker nodes were not measured with it."""


PPO_HALFCHEETAH: dict[str, Any] = {
    **PPO_MUJOCO,
    "model": {"initial_log_std": -1.0},
    "gamma": 0.98,
    "gae_lambda": 0.92,
}
"""HalfCheetah-v5: PPO_MUJOCO with less exploration noise at the start (action std 0.37, not
1) and a shorter horizon (gamma 0.98, lambda 0.92, as RL Baselines3 Zoo's tuned PPO). With
PPO_MUJOCO the cheetah settles on a slow gait: 1,795 +- 18 at 1M agent steps (3 seeds); with
this preset 5,974 +- 361 (worst 5,589), 4.5-4.7 minutes a run (benchmarks/ppo_mujoco.py --envs
HalfCheetah-v5, 2026-12-06); seed 0 alone: 5,049 with the smaller std only, 6,456 with both.
The same two changes on Hopper and Walker2d were at 650 and 935 after 600k steps (PPO_MUJOCO
reaches 2,620 and 3,422 at 1M), so they apply to HalfCheetah only."""


ATARI_2CPU = PONG_2CPU
"""Every other Atari game on a small CPU-only machine gets Pong's settings: they are what keeps
the emulators, the only real cost, busy on 2 cores (Breakout: ~2,330 agent steps/s, where
IMPALA's defaults, 2 actors of 16 envs and 84x84 frames through the Nature CNN, gave ~600).
The learning side is tuned on Pong only: Breakout reaches 21 at 2.5M agent steps (one seed,
benchmarks/impala_pong.py --env ALE/Breakout-v5, 2026-12-06)."""


def default_config(env_id: str, *, run: str = "IMPALA", cpus: int, gpus: int) -> dict[str, Any]:
    """The ``--config`` a run of ``env_id`` gets when it gives none (``{}`` or no flag).

    IMPALA on an Atari game (``PongNoFrameskip-v4``, ``ALE/Breakout-v5``, ...) on a small
    CPU-only machine (no GPU, at most :data:`SMALL_MACHINE_CPUS` cores) gets
    :data:`PONG_2CPU` (:data:`ATARI_2CPU`); PPO on Gymnasium's MuJoCo locomotion tasks gets
    :data:`PPO_MUJOCO` (:data:`PPO_HALFCHEETAH` on HalfCheetah), on CartPole :data:`PPO_CARTPOLE`; everything else gets ``{}`` (the
    config class's own defaults). A run that gives any ``--config`` (the seed's
    ``{"num_gpus": 1, "num_workers": 13, ...}`` included) gets exactly what it gave.
    """
    small_cpu = gpus == 0 and cpus <= SMALL_MACHINE_CPUS
    if run == "IMPALA" and small_cpu and _atari_game(env_id) is not None:
        return dict(PONG_2CPU if _atari_game(env_id) == "pong" else ATARI_2CPU)
    if run == "PPO" and _is_mujoco(env_id):
        return dict(PPO_HALFCHEETAH if env_id.startswith("HalfCheetah-") else PPO_MUJOCO)
    if run == "PPO" and env_id.startswith("CartPole-"):
        return dict(PPO_CARTPOLE)
    return {}


def _atari_game(env_id: str) -> str | None:
    import gymnasium

    try:
        return gymnasium.spec(env_id).kwargs.get("game")
    except gymnasium.error.Error:
        return None


def _is_mujoco(env_id: str) -> bool:
    import gymnasium

    try:
        entry = gymnasium.spec(env_id).entry_point
    except gymnasium.error.Error:
        return False
    return isinstance(entry, str) and entry.startswith("gymnasium.envs.mujoco")
