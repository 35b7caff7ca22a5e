"""Tested ``--config`` presets (plain dicts, as they would be passed on the command line)."""

from __future__ import annotations

from typing import Any

PONG_2CPU: dict[str, Any] = {
    "num_workers": 1,
    "num_envs_per_worker": 64,
    "env_num_threads": 2,
    "sample_batch_size": 20,
    "train_batch_size": 1280,
    "minibatch_size": 320,
    "num_sgd_iter": 2,
    "lr": 5e-4,
    "entropy_coeff": 0.01,
    "clip_param": 0.1,
    "normalize_advantages": True,
    "vtrace_lambda": 0.95,
    "model": {"dim": 42, "network": "fast42"},
    "min_time_s_per_iteration": 10,
}
"""Pong on a 2-core CPU-only machine: one actor stepping 64 emulators in 2 native threads,
a learner on the driver; the fast42 network keeps inference + learning cheap next to the
emulators (see benchmarks/impala_throughput.py). The update is APPO-style (PPO's clip,
normalised advantages, 2 passes in minibatches of 320). Throughput is measured; that it
reaches 18 within 5M steps is NOT yet shown (see the trainer's report)."""

CARTPOLE: dict[str, Any] = {
    "num_envs_per_worker": 32,
    "sample_batch_size": 20,
    "train_batch_size": 640,
    "lr": 1e-3,
    "min_time_s_per_iteration": 1.0,
}
"""CartPole-v1 to a mean reward of 150 in about 10 seconds (any ``num_workers``)."""
