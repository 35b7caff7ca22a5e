"""RLlib callbacks: log the metrics RLlib reports into the rlfleet run (as the seed's
``on_train_result`` logged them into the Azure ML run)."""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

from rlfleet import Run


class RewardToRun(RLlibCallback):
    """Logs ``episode_reward_mean`` and ``episodes_total`` after each training iteration."""

    def on_train_result(self, *, algorithm: Any, result: dict, **kwargs: Any) -> None:
        runners = result.get("env_runners", {})
        step = int(result.get("training_iteration", 0))
        metrics = {
            "episodes_total": runners.get("num_episodes_lifetime"),
            "timesteps_total": runners.get("num_env_steps_sampled_lifetime"),
            "time_total_s": result.get("time_total_s"),
        }
        if runners.get("episode_return_mean") is not None:  # no episode finished yet
            metrics["episode_reward_mean"] = runners["episode_return_mean"]
        Run.get_context().log_metrics(
            {k: v for k, v in metrics.items() if v is not None}, step=step
        )
