"""Flagship benchmark: IMPALA learns Pong; writes the learning curve (CSV + PNG) and peak memory.

    .venv/bin/python benchmarks/impala_pong.py --minutes 30 --out outputs/pong
    .venv/bin/python benchmarks/impala_pong.py --max-steps 1500000 --config '{"lr": 0.001}'

Starts a local Ray instance (unless --config sets num_workers 0), trains until
episode_reward_mean 18, --minutes or --max-steps (5M by default), sampling the summed memory
(PSS) of this process and all its descendants (Ray's processes and actors) every few seconds.
The trainer's own artifacts (learning_curve.png / .csv, logged with each checkpoint) are copied
into --out; summary.json holds the reward at each million steps, when 18 was reached, the time,
the steps and the peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import psutil

from rlfleet.impala.config import ImpalaConfig, StopConfig
from rlfleet.impala.loop import train
from rlfleet.impala.plots import LearningCurve
from rlfleet.impala.presets import PONG_2CPU
from rlfleet.impala.sinks import CsvMetricSink, FanOutMetricSink


class MemoryWatch(threading.Thread):
    """Samples the summed PSS of this process tree; ``peak_bytes`` is the maximum seen."""

    def __init__(self, interval_s: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        root = psutil.Process()
        while not self._stop_event.wait(self.interval_s):
            total = 0
            for process in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += process.memory_full_info().pss
            self.peak_bytes = max(self.peak_bytes, total)

    def stop(self) -> None:
        self._stop_event.set()


class ProgressPrinter:
    """One line per iteration, and the learning curve kept for the summary."""

    def __init__(self) -> None:
        self.curve = LearningCurve()

    def log_metrics(self, metrics, step=None) -> None:
        self.curve.add(metrics)
        print(
            f"iter {step:4d}  t={metrics['time_total_s']:6.0f}s  "
            f"steps={metrics['timesteps_total']:>9,}  "
            f"reward={metrics['episode_reward_mean']:6.2f}  "
            f"sample={metrics['sample_throughput']:5.0f}/s  "
            f"learn={metrics['learn_throughput']:6.0f}/s  "
            f"entropy={metrics['entropy']:.2f}  "
            f"clip={metrics.get('clip_fraction', math.nan):.2f}  "
            f"lag={metrics.get('policy_lag', math.nan):.1f}",
            flush=True,
        )


class CopyArtifacts:
    """An artifact sink that copies the learning curve files into the output folder."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        if artifact_path is None:
            shutil.copy(local_path, self.out / Path(local_path).name)


def milestones(curve: LearningCurve, goal: float) -> dict[str, float | None]:
    """Reward at each million agent steps, and steps and minutes when ``goal`` was first met."""
    summary: dict[str, float | None] = {}
    for million in range(1, 6):
        before = [p for p in curve.points if p[1] <= million * 1_000_000]
        if before and curve.points[-1][1] >= million * 1_000_000:
            summary[f"reward_at_{million}M"] = round(before[-1][3], 2)
    reached = next((p for p in curve.points if p[3] >= goal), None)
    summary["steps_to_goal"] = reached[1] if reached else None
    summary["minutes_to_goal"] = round(reached[2] / 60, 1) if reached else None
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--max-steps", type=int, default=5_000_000)
    parser.add_argument("--reward", type=float, default=18.0)
    parser.add_argument("--config", default="{}", help="JSON overrides of presets.PONG_2CPU")
    parser.add_argument("--env", default="PongNoFrameskip-v4")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--out", default="outputs/impala_pong")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    config = ImpalaConfig.from_dict({**PONG_2CPU, **json.loads(args.config)})
    stop = StopConfig(
        episode_reward_mean=args.reward,
        time_total_s=args.minutes * 60,
        timesteps_total=args.max_steps,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    progress = ProgressPrinter()
    sink = FanOutMetricSink([CsvMetricSink(out / "metrics.csv"), progress])

    memory = MemoryWatch()
    memory.start()
    wall_start = time.perf_counter()
    if config.num_workers:
        import ray

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private, local-only instance
        ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # after Ray's: a clean shutdown
    try:
        result = train(
            args.env,
            config,
            stop,
            metric_sink=sink,
            artifact_sink=CopyArtifacts(out),
            checkpoint_dir=out / "checkpoints",
        )
    finally:
        if config.num_workers:
            ray.shutdown()
        memory.stop()
    wall = time.perf_counter() - wall_start
    summary = {
        "episode_reward_mean": result.get("episode_reward_mean"),
        "timesteps_total": result.get("timesteps_total"),
        "time_total_s": result.get("time_total_s"),
        "steps_per_s": result.get("timesteps_total", 0) / max(result.get("time_total_s", 0), 1e-9),
        **milestones(progress.curve, args.reward),
        "wall_s_including_startup": wall,
        "peak_memory_gib": memory.peak_bytes / 2**30,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    main()
