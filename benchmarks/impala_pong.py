"""Flagship benchmark: IMPALA learns Pong; writes the learning curve (CSV + PNG) and peak memory.

    .venv/bin/python benchmarks/impala_pong.py --minutes 30 --out outputs/pong
    .venv/bin/python benchmarks/impala_pong.py --max-steps 1500000 --config '{"lr": 0.001}'
    .venv/bin/python benchmarks/impala_pong.py --seeds 0 1 2 --max-steps 2000000 --out docs/pong

Starts a local Ray instance (unless --config sets num_workers 0), trains until
episode_reward_mean 18, --minutes or --max-steps (5M by default), sampling the summed memory
(PSS) of this process and all its descendants (Ray's processes and actors) every few seconds.
The trainer's own artifacts (learning_curve.png / .csv, logged with each checkpoint) are copied
into --out; summary.json holds the reward at each million steps, when 18 was reached, the time,
the steps and the peak memory.

With --seeds, each seed runs in turn (a process of its own, into --out/seed-N), then
--out/seeds.md gets the table (steps and minutes to 18 per seed, median, worst, peak memory)
and --out/seeds.png one chart with every seed's curve.
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
import statistics
import subprocess
import sys
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
            f"lr={metrics.get('cur_lr', math.nan):.1e}  "
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
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="run these seeds in turn; table and chart of all"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.seeds:
        run_seeds(args)
        return

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
    progress.curve.write_csv(out / "curve.csv")
    print(json.dumps(summary, indent=2))


def run_seeds(args: argparse.Namespace) -> None:
    """Each seed in a process of its own (its own Ray instance and memory watch), in turn;
    then the table and the chart of them all."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = json.loads(args.config)
    for number, seed in enumerate(args.seeds, 1):
        print(f"=== seed {seed} ({number} of {len(args.seeds)})", flush=True)
        one = [
            sys.executable, __file__, "--minutes", str(args.minutes), "--max-steps",
            str(args.max_steps), "--reward", str(args.reward), "--env", args.env,
            "--num-cpus", str(args.num_cpus), "--out", str(out / f"seed-{seed}"),
            "--config", json.dumps({**overrides, "seed": seed}),
        ]  # fmt: skip
        subprocess.run(one, check=True)
    summaries = {
        seed: json.loads((out / f"seed-{seed}" / "summary.json").read_text()) for seed in args.seeds
    }
    table = seeds_table(summaries, args.reward, args.max_steps)
    (out / "seeds.md").write_text(table)
    print(table)
    curves = {
        seed: LearningCurve.read_csv(out / f"seed-{seed}" / "curve.csv") for seed in args.seeds
    }
    seeds_chart(curves, out / "seeds.png", goal=args.reward, title=f"{args.env}: every seed")


def seeds_table(summaries: dict[int, dict], goal: float, max_steps: int) -> str:
    """Markdown: steps and minutes to ``goal`` per seed, then their median and worst (a seed
    that never got there counts as the worst, beyond every budget)."""
    rows = [
        f"| seed | agent steps to {goal:g} | training minutes to {goal:g} | reward at the end | "
        "agent steps/s | peak memory GiB |",
        "|---|---|---|---|---|---|",
    ]
    steps, minutes = [], []
    for seed, s in summaries.items():
        reached = s["steps_to_goal"] is not None
        steps.append(s["steps_to_goal"] if reached else math.inf)
        minutes.append(s["minutes_to_goal"] if reached else math.inf)
        to_goal = f"{s['steps_to_goal']:,}" if reached else f"not in {max_steps:,}"
        rows.append(
            f"| {seed} | {to_goal} | "
            f"{s['minutes_to_goal'] if reached else '-'} | {s['episode_reward_mean']:.2f} | "
            f"{s['steps_per_s']:,.0f} | {s['peak_memory_gib']:.2f} |"
        )

    def shown(value: float, fmt: str) -> str:
        return "not reached" if math.isinf(value) else format(value, fmt)

    rewards = [s["episode_reward_mean"] for s in summaries.values()]
    rows.append(
        f"| **median** | **{shown(statistics.median(steps), ',.0f')}** | "
        f"**{shown(statistics.median(minutes), '.1f')}** | {statistics.median(rewards):.2f} | | |"
    )
    rows.append(
        f"| **worst** | **{shown(max(steps), ',.0f')}** | **{shown(max(minutes), '.1f')}** | "
        f"{min(rewards):.2f} | | {max(s['peak_memory_gib'] for s in summaries.values()):.2f} |"
    )
    return "\n".join(rows) + "\n"


def seeds_chart(curves: dict[int, LearningCurve], path: Path, *, goal: float, title: str) -> None:
    """Every seed's reward against agent steps (left) and training minutes (right)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2, sharey=True)
    for seed, curve in curves.items():
        rewards = [p[3] for p in curve.points]
        axes[0].plot([p[1] for p in curve.points], rewards, linewidth=1.3, label=f"seed {seed}")
        axes[1].plot([p[2] / 60 for p in curve.points], rewards, linewidth=1.3)
    for axis, label in ((axes[0], "agent steps"), (axes[1], "training minutes")):
        axis.axhline(goal, color="grey", linestyle="--", linewidth=1)
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("episode_reward_mean (last 100 episodes)")
    axes[0].legend(loc="lower right")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    main()
