"""Pong throughput on this machine, in agent steps/s (1 step = 1 action = 4 emulator frames).

    .venv/bin/python benchmarks/impala_throughput.py            # (a), (b) and (c), ~15 min
    .venv/bin/python benchmarks/impala_throughput.py --skip-rllib --bursts 3

(a) the environment alone: AtariVectorEnv with the same envs, threads and preprocessing as
    training, random actions;
(b) rlfleet IMPALA training on Pong (presets.PONG_2CPU: 1 Ray actor + learner on the driver),
    agent steps sampled per second while learning;
(c) RLlib's IMPALA (new API stack) on the same game, in its own venv (``--rllib-venv``, made
    with ``ray[rllib]``, torch, gymnasium, ale-py and opencv on first use and reused after),
    one subprocess per setting of ``--rllib-settings`` (``RUNNERSxENVS`` env runners x envs per
    runner), each on a private 2-CPU Ray instance; the fastest setting is compared
    (see benchmarks/impala_rllib.py for how it is measured).
(a) and (b) are measured in bursts and their median is printed; the ratios (b)/(a) and (b)/(c)
close the report. Run it on a quiet machine: the three parts run one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from rlfleet.impala.config import ImpalaConfig, StopConfig
from rlfleet.impala.envs import make_vector_env
from rlfleet.impala.loop import ImpalaTrainer
from rlfleet.impala.presets import PONG_2CPU

ENV_ID = "PongNoFrameskip-v4"
HERE = Path(__file__).resolve().parent
RLLIB_PACKAGES = (
    "ray[rllib]==2.60.0",
    "torch==2.13.0",  # pip takes the CPU build where the machine offers one (local wheels)
    "gymnasium>=1.2.2,<1.3",
    "ale-py>=0.11,<0.13",
    "opencv-python-headless",  # RLlib's Atari wrappers resize with cv2
)


class ForeignLoad(threading.Thread):
    """Cores busy with processes outside this benchmark's process tree, averaged over a span.

    Every ``interval_s`` it takes the machine's busy CPU time minus the CPU time this process and
    its descendants (Ray's processes, actors, the RLlib subprocess) used; ``take()`` returns the
    average since the last ``take()``. A check that the machine was quiet while measuring.
    """

    def __init__(self, interval_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self._foreign_s = 0.0
        self._since = time.perf_counter()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def run(self) -> None:
        seen: dict[int, float] = {}
        busy = _machine_busy_s()
        while not self._stopped.wait(self.interval_s):
            ours = 0.0
            root = psutil.Process()
            for process in [root, *root.children(recursive=True)]:
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                total = times.user + times.system
                ours += total - seen.get(process.pid, 0.0)
                seen[process.pid] = total
            now_busy = _machine_busy_s()
            with self._lock:
                self._foreign_s += max(0.0, now_busy - busy - ours)
            busy = now_busy

    def take(self) -> float:
        with self._lock:
            now = time.perf_counter()
            cores = self._foreign_s / max(now - self._since, 1e-9)
            self._foreign_s, self._since = 0.0, now
        return cores

    def stop(self) -> None:
        self._stopped.set()


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def env_alone(config: ImpalaConfig, bursts: int, burst_s: float) -> list[float]:
    """Random-action steps/s of the vector env a training actor would step."""
    env, _ = make_vector_env(
        ENV_ID,
        num_envs=config.num_envs_per_worker * max(config.num_workers, 1),
        dim=config.model.dim,
        num_threads=config.env_num_threads or (os.cpu_count() or 1),
        seed=0,
        options=config.env_config,
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


def rllib_python(venv: Path) -> Path:
    """The venv's interpreter, with RLlib installed; the venv is made on first use."""
    python = venv / "bin" / "python"
    marker = venv / ".rlfleet-installed"
    if not marker.exists():
        print(f"making the RLlib venv {venv} (once) ...", flush=True)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *RLLIB_PACKAGES], check=True
        )
        marker.write_text("\n".join(RLLIB_PACKAGES) + "\n")
    return python


def rllib(
    python: Path, setting: str, dim: int, warmup_s: float, measure_s: float
) -> dict[str, float | None]:
    """One RLlib IMPALA measurement (a subprocess in the RLlib venv); its JSON summary."""
    runners, envs = (int(n) for n in setting.lower().split("x"))
    command = [
        str(python),
        str(HERE / "impala_rllib.py"),
        f"--env-runners={runners}",
        f"--envs-per-runner={envs}",
        f"--dim={dim}",
        f"--warmup-s={warmup_s}",
        f"--measure-s={measure_s}",
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=warmup_s + measure_s + 600
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines or not lines[-1].startswith("{"):
        print(completed.stdout[-2000:], completed.stderr[-4000:], sep="\n", file=sys.stderr)
        return {"sample_steps_per_s": None}
    return json.loads(lines[-1])


def report(name: str, figures: list[float], foreign_cores: float) -> float:
    median = statistics.median(figures)
    bursts = ", ".join(f"{f:.0f}" for f in figures)
    print(
        f"{name:<46} median {median:6.0f} steps/s  (bursts: {bursts}; "
        f"other processes: {foreign_cores:.2f} cores)",
        flush=True,
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--burst-s", type=float, default=10.0)
    parser.add_argument("--config", default="{}", help="JSON overrides of presets.PONG_2CPU")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--skip-rllib", action="store_true", help="measure (a) and (b) only")
    parser.add_argument("--rllib-venv", type=Path, default=HERE / ".rllib-venv")
    parser.add_argument(
        "--rllib-settings",
        default="2x8,1x16,1x32,1x64",
        help="comma-separated RUNNERSxENVS (env runners x envs per runner) to try",
    )
    parser.add_argument("--rllib-dim", type=int, default=64, help="RLlib's observation side")
    parser.add_argument("--rllib-warmup-s", type=float, default=45.0)
    parser.add_argument("--rllib-measure-s", type=float, default=60.0)
    args = parser.parse_args()
    config = ImpalaConfig.from_dict({**PONG_2CPU, **json.loads(args.config)})
    print(f"config: {json.dumps(config.to_dict())}", flush=True)
    python = None if args.skip_rllib else rllib_python(args.rllib_venv)
    load = ForeignLoad()
    load.start()

    env_steps = report(
        "(a) AtariVectorEnv alone, random actions",
        env_alone(config, args.bursts, args.burst_s),
        load.take(),
    )

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private, local-only instance
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False)
    try:
        load.take()
        train_steps = report(
            "(b) rlfleet IMPALA training (Ray actors)",
            training(config, args.bursts, args.burst_s),
            load.take(),
        )
    finally:
        ray.shutdown()

    best: dict[str, float | str | None] = {}
    for setting in args.rllib_settings.split(",") if python else []:
        load.take()
        summary = rllib(python, setting, args.rllib_dim, args.rllib_warmup_s, args.rllib_measure_s)
        figure = summary.get("sample_steps_per_s")
        shown = f"{figure:6.0f} steps/s" if figure else "failed"
        name = f"(c) RLlib IMPALA {setting} envs, {args.rllib_dim}x{args.rllib_dim}"
        print(f"{name:<46} {shown}  (other processes: {load.take():.2f} cores)", flush=True)
        if figure and figure > float(best.get("sample_steps_per_s") or 0):
            best = {**summary, "setting": setting}
    load.stop()

    print()
    print(f"(a) environment alone          {env_steps:6.0f} agent steps/s")
    print(f"(b) rlfleet IMPALA training    {train_steps:6.0f} agent steps/s")
    rllib_steps = float(best["sample_steps_per_s"]) if best else None
    if rllib_steps:
        print(
            f"(c) RLlib IMPALA training      {rllib_steps:6.0f} agent steps/s ({best['setting']})"
        )
    print(f"(b)/(a) = {train_steps / env_steps:.0%}")
    if rllib_steps:
        print(f"(b)/(c) = {train_steps / rllib_steps:.1f}x")


if __name__ == "__main__":
    main()
