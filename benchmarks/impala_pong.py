"""Flagship benchmark: IMPALA learns Pong; writes the learning curve (CSV + PNG) and peak memory.

    .venv/bin/python benchmarks/impala_pong.py --minutes 30 --out outputs/pong
    .venv/bin/python benchmarks/impala_pong.py --minutes 6 --config '{"lr": 0.001}'

Starts a local Ray instance (unless --config sets num_workers 0), trains until
episode_reward_mean 18, --minutes or --max-steps (5M by default), sampling the summed memory
(PSS) of this process and all its descendants (Ray's processes and actors) every few seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path

import psutil

from rlfleet.impala.config import ImpalaConfig, StopConfig
from rlfleet.impala.loop import train
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
    def log_metrics(self, metrics, step=None) -> None:
        print(
            f"iter {step:4d}  t={metrics['time_total_s']:6.0f}s  "
            f"steps={metrics['timesteps_total']:>9,}  "
            f"reward={metrics['episode_reward_mean']:6.2f}  "
            f"sample={metrics['sample_throughput']:5.0f}/s  "
            f"learn={metrics['learn_throughput']:6.0f}/s  "
            f"entropy={metrics['entropy']:.2f}",
            flush=True,
        )


def plot_curve(csv_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.read_csv(csv_path)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, x, label in zip(
        axes, ("timesteps_total", "time_total_s"), ("agent steps", "seconds"), strict=True
    ):
        axis.plot(frame[x], frame["episode_reward_mean"])
        axis.axhline(18, color="grey", linestyle="--", linewidth=1)
        axis.set_xlabel(label)
        axis.set_ylabel("episode_reward_mean (last 100 episodes)")
        axis.grid(alpha=0.3)
    figure.suptitle("rlfleet IMPALA on PongNoFrameskip-v4 (2 CPU cores)")
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)


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
    csv_path = out / "curve.csv"
    sink = FanOutMetricSink([CsvMetricSink(csv_path), ProgressPrinter()])

    memory = MemoryWatch()
    memory.start()
    wall_start = time.perf_counter()
    if config.num_workers:
        import ray

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private, local-only instance
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    try:
        result = train(args.env, config, stop, metric_sink=sink, checkpoint_dir=out / "checkpoints")
    finally:
        if config.num_workers:
            ray.shutdown()
        memory.stop()
    wall = time.perf_counter() - wall_start
    plot_curve(csv_path, out / "curve.png")
    summary = {
        "episode_reward_mean": result.get("episode_reward_mean"),
        "timesteps_total": result.get("timesteps_total"),
        "time_total_s": result.get("time_total_s"),
        "wall_s_including_startup": wall,
        "peak_memory_gib": memory.peak_bytes / 2**30,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
