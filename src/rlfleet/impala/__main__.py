"""Entry point: ``python -m rlfleet.impala --run IMPALA|APPO|PPO --env ENV --config JSON
--stop JSON``.

This is what the platform submits as a Ray job (the driver runs on the head node; ``ray.init()``
joins the cluster through RAY_ADDRESS). Outside a cluster it starts a local Ray instance, or runs
in this one process when ``num_workers`` is 0. Metrics go to the platform's tracked run when
``rlfleet.Run`` exists, else to a CSV file; a progress line per iteration goes to stdout.
Without ``--config``, Pong on a small CPU-only machine runs the tested preset
(:func:`rlfleet.impala.presets.default_config`).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from rlfleet.impala.config import (
    ALGORITHMS,
    ConfigError,
    StopConfig,
    config_class,
    parse_json_object,
)
from rlfleet.impala.envs import UnknownEnvironmentError, UnsupportedEnvironmentError, check_env
from rlfleet.impala.loop import train
from rlfleet.impala.presets import default_config
from rlfleet.impala.sinks import (
    ArtifactSink,
    CsvMetricSink,
    FanOutMetricSink,
    LocalArtifactSink,
    MetricSink,
)

logger = logging.getLogger(__name__)


class ProgressLine:
    """Prints one human line per iteration: reward, throughput and time left against the stop."""

    def __init__(self, stop: StopConfig) -> None:
        self.stop = stop

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        reward = metrics["episode_reward_mean"]
        goal = self.stop.episode_reward_mean
        line = (
            f"iter {int(metrics['training_iteration']):4d} | "
            f"reward {reward:7.2f}{f' (goal {goal:g})' if goal is not None else ''} | "
            f"episodes {int(metrics['episodes_total']):6d} | "
            f"steps {int(metrics['timesteps_total']):>11,} | "
            f"{metrics['sample_throughput']:6.0f} steps/s "
            f"(learn {metrics['learn_throughput']:.0f}/s) | "
            f"{metrics['time_total_s']:6.0f}s{self._time_left(metrics)}"
        )
        print(line, flush=True)

    def _time_left(self, metrics: Mapping[str, float]) -> str:
        seconds_per_iteration = metrics["time_total_s"] / max(metrics["training_iteration"], 1)
        estimates = {}
        if self.stop.time_total_s is not None:
            estimates["time_total_s"] = self.stop.time_total_s - metrics["time_total_s"]
        if self.stop.timesteps_total is not None and metrics["sample_throughput"] > 0:
            steps_left = self.stop.timesteps_total - metrics["timesteps_total"]
            estimates["timesteps_total"] = steps_left / metrics["sample_throughput"]
        if self.stop.training_iteration is not None:
            iterations_left = self.stop.training_iteration - metrics["training_iteration"]
            estimates["training_iteration"] = iterations_left * seconds_per_iteration
        if not estimates:
            return ""
        name, seconds = min(estimates.items(), key=lambda item: item[1])
        return f" | {max(seconds, 0):.0f}s left ({name})"


def platform_sinks(checkpoint_dir: Path) -> tuple[MetricSink, ArtifactSink]:
    """The platform's tracked run when ``rlfleet.Run`` exists, else a CSV file and local files."""
    try:
        from rlfleet import Run  # type: ignore[attr-defined]

        run = Run.get_context()
    except Exception as error:  # no platform (yet), or not inside a tracked run
        csv_path = checkpoint_dir / "metrics.csv"
        logger.info("no rlfleet run context (%s); metrics go to %s", error, csv_path)
        return CsvMetricSink(csv_path), LocalArtifactSink()
    logger.info("logging to rlfleet run %s", run.id)
    return run, run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rlfleet.impala",
        description="Train an agent with IMPALA, APPO or PPO (RLlib-compatible arguments).",
    )
    parser.add_argument("--run", required=True, help=f"algorithm: {', '.join(ALGORITHMS)}")
    parser.add_argument(
        "--env",
        required=True,
        help="e.g. PongNoFrameskip-v4, CartPole-v1, Hopper-v5, or your own: module:Class, "
        "module:Id-v0 (the module importable from the working directory)",
    )
    parser.add_argument(
        "--config", default="{}", help="JSON object of the algorithm's config fields"
    )
    parser.add_argument("--stop", default="{}", help="JSON object of StopConfig fields")
    parser.add_argument("--restore", default=None, help="checkpoint file to continue from")
    parser.add_argument("--checkpoint-dir", default="checkpoints", help="where checkpoints go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        given = parse_json_object(args.config, what="config")
        config = config_class(args.run).from_dict(
            given or machine_default_config(args.env, args.run)
        )
        stop = StopConfig.from_dict(parse_json_object(args.stop, what="stop"))
        check_env(args.env, config.env_config, source_directory=Path.cwd())
        if args.restore and not Path(args.restore).is_file():
            raise ConfigError(f"--restore {args.restore!r} is not a file")
    except (ConfigError, UnknownEnvironmentError, UnsupportedEnvironmentError) as error:
        print(f"python -m rlfleet.impala: error: {error}", file=sys.stderr)
        return 2

    # `ray job stop` and the platform's cancel send SIGTERM: finish with a final checkpoint.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    if config.num_workers > 0:
        _init_ray()
    checkpoint_dir = Path(args.checkpoint_dir)
    metric_sink, artifact_sink = platform_sinks(checkpoint_dir)
    result = train(
        args.env,
        config,
        stop,
        metric_sink=FanOutMetricSink([metric_sink, ProgressLine(stop)]),
        artifact_sink=artifact_sink,
        checkpoint_dir=checkpoint_dir,
        restore_from=args.restore,
    )
    reward = result.get("episode_reward_mean", math.nan)
    steps = int(result.get("timesteps_total", 0))
    print(f"done: episode_reward_mean {reward:.2f} after {steps:,} steps")
    return 0


def machine_default_config(env_id: str, run: str = "IMPALA") -> dict[str, object]:
    """The preset this machine gives ``env_id`` when the run gives no ``--config``."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    preset = default_config(env_id, run=run, cpus=os.cpu_count() or 1, gpus=gpus)
    if preset:
        logger.info("no --config given: %s on this machine runs %s", env_id, preset)
    return preset


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _init_ray() -> None:
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()  # inside a cluster (a Ray job): join it
    else:
        ray.init(include_dashboard=False)  # a private local instance for this run


if __name__ == "__main__":
    sys.exit(main())
