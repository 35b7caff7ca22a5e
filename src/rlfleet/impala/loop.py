"""The training loop of every algorithm: sample -> learn -> broadcast weights -> report, until
a stop.

``Trainer.train_iteration`` is one training iteration (one metrics report, at least
``min_time_s_per_iteration`` seconds); :func:`train` runs iterations until a stop criterion,
checkpointing every ``checkpoint_freq_s`` seconds and at the end. With each checkpoint go the
learning curve's ``learning_curve.png`` and ``learning_curve.csv`` (artifacts of the run).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch

from rlfleet.impala.actors import make_sampler
from rlfleet.impala.checkpoint import Checkpoint, Counters, load_checkpoint, save_checkpoint
from rlfleet.impala.config import StopConfig, TrainerConfig
from rlfleet.impala.cpu import denormals_flushed
from rlfleet.impala.learner import BatchBuilder, Learner, learner_device
from rlfleet.impala.plots import LearningCurve
from rlfleet.impala.sinks import ArtifactSink, MetricSink

logger = logging.getLogger(__name__)


class Trainer:
    """A learner fed by a sampler (Ray actors, or in-process when ``num_workers`` is 0)."""

    def __init__(self, env_id: str, config: TrainerConfig, *, restore_from: str | None = None):
        self.env_id = env_id
        self.config = config
        self._denormals_were_flushed = denormals_flushed()  # the caller's, restored by close()
        if config.learner_num_threads:
            torch.set_num_threads(config.learner_num_threads)
        restored = load_checkpoint(restore_from) if restore_from else None
        self.counters = restored.counters if restored else Counters()
        self.sampler = make_sampler(env_id, config)
        try:
            self.learner = Learner(config, self.sampler.spec, learner_device(config))
            if restored:
                self.learner.load_state_dict(restored.learner)
        except Exception:
            self.sampler.close()
            raise
        if restored:
            changed = sorted(k for k, v in config.to_dict().items() if restored.config.get(k) != v)
            logger.info(
                "restored %s at iteration %d, %d steps (config now differs in: %s)",
                restore_from,
                self.counters.training_iteration,
                self.counters.timesteps_total,
                ", ".join(changed) or "nothing",
            )
        self.batch = BatchBuilder(config, self.sampler.spec)
        self.returns: deque[float] = deque(self.counters.recent_returns, maxlen=100)
        self.curve = LearningCurve(self.counters.curve)
        self.sampler.set_weights(self.learner.weights(), self.learner.version)
        self._clock_start = time.perf_counter() - self.counters.time_total_s

    def train_iteration(self, stop: StopConfig | None = None) -> dict[str, float]:
        """Learn for one iteration and return its metrics (the seed's names first)."""
        start = time.perf_counter()
        sampled = learned = episodes = 0
        lengths: list[int] = []
        lags: list[int] = []
        learn_seconds = 0.0
        stats: dict[str, float] = {}
        while True:
            batch_steps = 0
            while not self.batch.full:
                rollout = self.sampler.next_rollout()
                self.batch.add(rollout)
                lags.append(self.learner.version - rollout.policy_version)
                batch_steps += rollout.num_steps
                self.returns.extend(rollout.episode_returns)
                lengths.extend(rollout.episode_lengths)
                episodes += len(rollout.episode_returns)
            sampled += batch_steps

            learn_start = time.perf_counter()
            stats = self.learner.update(self.batch.take(self.learner.device))
            self.sampler.set_weights(self.learner.weights(), self.learner.version)
            learn_seconds += time.perf_counter() - learn_start
            learned += batch_steps

            elapsed = time.perf_counter() - start
            if elapsed >= self.config.min_time_s_per_iteration or self._stop_soon(stop, sampled):
                break

        counters = self.counters
        counters.timesteps_total += sampled
        counters.episodes_total += episodes
        counters.training_iteration += 1
        counters.time_total_s = time.perf_counter() - self._clock_start
        counters.recent_returns = list(self.returns)
        result = {
            "episode_reward_mean": float(np.mean(self.returns)) if self.returns else math.nan,
            "episodes_total": counters.episodes_total,
            "timesteps_total": counters.timesteps_total,
            "time_total_s": counters.time_total_s,
            "training_iteration": counters.training_iteration,
            "episode_reward_max": max(self.returns, default=math.nan),
            "episode_reward_min": min(self.returns, default=math.nan),
            "episode_len_mean": float(np.mean(lengths)) if lengths else math.nan,
            "episodes_this_iter": episodes,
            "time_this_iter_s": elapsed,
            "sample_throughput": sampled / elapsed,
            "learn_throughput": learned / max(learn_seconds, 1e-9),
            "num_learner_updates": self.learner.version,
            "policy_lag": float(np.mean(lags)) if lags else math.nan,
            "num_healthy_workers": self.sampler.fewest_healthy_workers(),
            "num_worker_failures": self.sampler.worker_failures,
            **stats,
        }
        self.curve.add(result)
        counters.curve = self.curve.points
        return result

    def _stop_soon(self, stop: StopConfig | None, sampled: int) -> bool:
        """Whether a step or time limit falls inside the current iteration."""
        if stop is None:
            return False
        steps = self.counters.timesteps_total + sampled
        if stop.timesteps_total is not None and steps >= stop.timesteps_total:
            return True
        elapsed = time.perf_counter() - self._clock_start
        return stop.time_total_s is not None and elapsed >= stop.time_total_s

    def save(self, directory: str | Path) -> Path:
        """Write a checkpoint of the learner, counters and config; returns its path."""
        checkpoint = Checkpoint(
            learner=self.learner.state_dict(),
            counters=self.counters,
            config=self.config.to_dict(),
            env_id=self.env_id,
            algorithm=self.config.algorithm,
            env_spec=self.sampler.spec.to_dict(),
        )
        return save_checkpoint(directory, checkpoint)

    def close(self) -> None:
        """Stop the sampler (and its actors); the calling thread's float settings are
        restored (the learner flushes subnormals to zero, see :func:`cpu.flush_denormals`)."""
        self.sampler.close()
        torch.set_flush_denormal(self._denormals_were_flushed)


ImpalaTrainer = Trainer
"""The name this class had when IMPALA was the only algorithm."""


def train(
    env_id: str,
    config: TrainerConfig,
    stop: StopConfig,
    *,
    metric_sink: MetricSink | None = None,
    artifact_sink: ArtifactSink | None = None,
    checkpoint_dir: str | Path | None = None,
    restore_from: str | None = None,
) -> dict[str, float]:
    """Train until a stop criterion is met; returns the last iteration's metrics.

    Ray must already be initialised when ``config.num_workers`` > 0.
    """
    trainer = Trainer(env_id, config, restore_from=restore_from)
    result: dict[str, float] = {}
    last_checkpoint = time.perf_counter()
    try:
        while True:
            result = trainer.train_iteration(stop)
            if metric_sink is not None:
                metric_sink.log_metrics(result, step=int(result["training_iteration"]))
            reason = stop.reached(result)
            if reason:
                logger.info("stopping: %s reached (%s)", reason, result[reason])
                break
            if checkpoint_dir and time.perf_counter() - last_checkpoint >= config.checkpoint_freq_s:
                _checkpoint(trainer, checkpoint_dir, artifact_sink, stop)
                last_checkpoint = time.perf_counter()
    except KeyboardInterrupt:
        logger.warning("interrupted; writing a final checkpoint")
    finally:
        trainer.close()
    if checkpoint_dir:
        _checkpoint(trainer, checkpoint_dir, artifact_sink, stop)
    return result


def _checkpoint(
    trainer: Trainer, directory: str | Path, sink: ArtifactSink | None, stop: StopConfig
) -> None:
    path = trainer.save(directory)
    curve_files = trainer.curve.write(
        Path(directory),
        threshold=stop.episode_reward_mean,
        title=f"rlfleet {trainer.config.algorithm} on {trainer.env_id}",
    )
    if sink is not None:
        sink.log_artifact(str(path), "checkpoints")
        for curve_file in curve_files:
            sink.log_artifact(str(curve_file), None)
