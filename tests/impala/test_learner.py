from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.impala.config import ConfigError, ImpalaConfig, config_class
from rlfleet.impala.learner import LR_RANGE, BatchBuilder, Learner, adapted_lr, take_rows
from rlfleet.impala.networks import channels_last_frames
from rlfleet.impala.sampling import EnvSpec, Rollout, rollout_arrays
from rlfleet.impala.spaces import ActionSpec

SPEC = EnvSpec(obs_shape=(3,), obs_dtype="float32", action=ActionSpec("discrete", (), n=2))


def make_rollout(num_steps: int, num_envs: int, fill: float) -> Rollout:
    arrays = rollout_arrays(SPEC, num_steps, num_envs)
    arrays["obs"][:] = fill
    arrays["rewards"][:] = fill
    return Rollout(arrays=arrays, num_steps=num_steps * num_envs, policy_version=0)


def test_batch_builder_concatenates_rollouts_along_the_batch_axis():
    config = ImpalaConfig(sample_batch_size=5, num_envs_per_worker=4, train_batch_size=40)
    builder = BatchBuilder(config, SPEC)
    assert builder.rollouts_per_batch == 2
    builder.add(make_rollout(5, 4, fill=1.0))
    assert not builder.full
    builder.add(make_rollout(5, 4, fill=2.0))
    assert builder.full
    batch = builder.take(torch.device("cpu"))
    assert batch["obs"].shape == (6, 8, 3) and batch["rewards"].shape == (5, 8)
    assert (batch["rewards"][:, :4] == 1.0).all() and (batch["rewards"][:, 4:] == 2.0).all()
    assert not builder.full


def one_step_batch(learner: Learner, rewards: list[float]) -> dict[str, torch.Tensor]:
    """Episodes of one step from the same observation, one per action in ``rewards``."""
    width = len(rewards)
    obs = torch.ones(2, width, 3)
    actions = torch.arange(width).remainder(2).unsqueeze(0)
    with torch.no_grad():
        logits, _ = learner.model(obs[0])
    return {
        "obs": obs,
        "actions": actions,
        "rewards": torch.tensor([rewards]),
        "dones": torch.ones(1, width, dtype=torch.bool),
        "mask": torch.ones(1, width, dtype=torch.bool),
        "behaviour_log_probs": torch.log_softmax(logits, -1).gather(-1, actions.T).T,
        "discounted_returns": torch.tensor([rewards]),
        "bootstrap_values": torch.zeros(1, width),
    }


def action_probability(learner: Learner, action: int) -> float:
    with torch.no_grad():
        logits, _ = learner.model(torch.ones(1, 3))
    return torch.softmax(logits, -1)[0, action].item()


def test_updates_make_the_rewarded_action_more_likely():
    config = ImpalaConfig(lr=1e-2, entropy_coeff=0.0)
    learner = Learner(config, SPEC, torch.device("cpu"))
    before = action_probability(learner, 1)
    for _ in range(20):
        stats = learner.update(one_step_batch(learner, [-1.0, 1.0] * 4))
    assert action_probability(learner, 1) > before + 0.2
    assert set(stats) >= {"policy_loss", "vf_loss", "entropy", "grad_gnorm"}
    assert learner.version == 20


def test_masked_steps_teach_nothing():
    learner = Learner(ImpalaConfig(), SPEC, torch.device("cpu"))
    weights = {name: value.copy() for name, value in learner.weights().items()}
    batch = one_step_batch(learner, [-1.0, 1.0])
    batch["mask"][:] = False
    learner.update(batch)
    for name, value in learner.weights().items():
        np.testing.assert_array_equal(value, weights[name])


def test_appo_clipping_stops_pushing_a_ratio_beyond_the_clip():
    config = ImpalaConfig(clip_param=0.2, entropy_coeff=0.0)
    learner = Learner(config, SPEC, torch.device("cpu"))
    batch = one_step_batch(learner, [1.0, 1.0])
    batch["actions"][:] = 1
    batch["behaviour_log_probs"] -= 5.0  # pi/mu >> 1.2 for the rewarded action
    learner.update(batch)
    assert learner.model.value.weight.grad.abs().sum() > 0
    assert learner.model.policy.weight.grad.abs().sum() == 0

    plain = Learner(ImpalaConfig(entropy_coeff=0.0), SPEC, torch.device("cpu"))
    plain.update(batch)
    assert plain.model.policy.weight.grad.abs().sum() > 0


def test_learning_rate_decays_linearly_over_the_steps_learned():
    config = ImpalaConfig(lr=1e-2, lr_decay_steps=40)
    learner = Learner(config, SPEC, torch.device("cpu"))
    rates = [learner.update(one_step_batch(learner, [1.0, -1.0] * 5))["cur_lr"] for _ in range(5)]
    assert rates == pytest.approx([1e-2, 7.5e-3, 5e-3, 2.5e-3, 0.0])
    assert learner.steps_learned == 50
    restored = Learner(config, SPEC, torch.device("cpu"))
    restored.load_state_dict(learner.state_dict())
    assert restored.steps_learned == 50


def test_adapted_lr_steps_by_one_and_a_half_within_its_bounds():
    bounds = (1e-5, 4e-3)
    assert adapted_lr(1e-3, kl=0.05, kl_target=0.01, bounds=bounds) == pytest.approx(1e-3 / 1.5)
    assert adapted_lr(1e-3, kl=0.001, kl_target=0.01, bounds=bounds) == pytest.approx(1.5e-3)
    assert adapted_lr(1e-3, kl=0.01, kl_target=0.01, bounds=bounds) == 1e-3  # in [t/2, 2t]
    assert adapted_lr(3e-3, kl=0.0, kl_target=0.01, bounds=bounds) == 4e-3
    assert adapted_lr(1.2e-5, kl=1.0, kl_target=0.01, bounds=bounds) == 1e-5


@pytest.mark.parametrize("kl_target, direction", [(1e-9, "down"), (10.0, "up")])
def test_kl_target_moves_the_learning_rate_after_each_pass(kl_target, direction):
    config = ImpalaConfig(lr=1e-3, kl_target=kl_target, num_sgd_iter=2, minibatch_size=5)
    learner = Learner(config, SPEC, torch.device("cpu"))
    batch = one_step_batch(learner, [1.0, -1.0] * 5)
    batch["behaviour_log_probs"] -= 0.5 * batch["actions"]  # the policy moved since: KL > 0
    stats = learner.update(batch)
    assert stats["kl"] > 0
    expected = 1e-3 / 1.5**2 if direction == "down" else 1e-3 * 1.5**2  # two passes
    assert LR_RANGE[0] * 1e-3 < expected < LR_RANGE[1] * 1e-3
    assert learner.lr == pytest.approx(expected)
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(expected)
    restored = Learner(config, SPEC, torch.device("cpu"))
    restored.load_state_dict(learner.state_dict())
    assert restored.lr == pytest.approx(expected)  # a resumed run goes on from there


def test_kl_target_refuses_a_decay_beside_it():
    with pytest.raises(ConfigError, match="kl_target"):
        ImpalaConfig.from_dict({"kl_target": 0.01, "lr_decay_steps": 1000})
    with pytest.raises(ConfigError, match="kl_target"):
        ImpalaConfig.from_dict({"kl_target": -1.0})


def test_every_pass_learns_from_the_targets_of_the_weights_the_update_started_from():
    # Recomputing V-trace per minibatch let the value function, fitted to the same steps in the
    # earlier passes, explain the returns away; normalised, the leftover noise drowned the
    # policy gradient (Pong stayed at -20 for over a million steps).
    config = ImpalaConfig(num_sgd_iter=3, minibatch_size=4, lr=1e-2, normalize_advantages=True)
    learner = Learner(config, SPEC, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    steps, width = 4, 6
    batch = {
        "obs": torch.randn(steps + 1, width, 3, generator=generator),
        "actions": torch.randint(0, 2, (steps, width), generator=generator),
        "rewards": torch.randn(steps, width, generator=generator),
        "dones": torch.zeros(steps, width, dtype=torch.bool),
        "mask": torch.ones(steps, width, dtype=torch.bool),
        "behaviour_log_probs": torch.full((steps, width), -0.7),
        "discounted_returns": torch.zeros(steps, width),
        "bootstrap_values": torch.zeros(steps, width),
    }
    expected = learner._targets(batch, batch["obs"])
    seen: list[dict[str, torch.Tensor]] = []
    reports: list[bool] = []
    gradient_step = learner._gradient_step

    def recording_gradient_step(
        minibatch: dict[str, torch.Tensor], *, report: bool
    ) -> dict[str, float]:
        seen.append(minibatch)
        reports.append(report)
        return gradient_step(minibatch, report=report)

    learner._gradient_step = recording_gradient_step
    stats = learner.update(batch)
    assert len(seen) == 3 * (steps * width // 4)  # minibatches of 4 steps, three passes
    assert reports == [False] * (len(seen) - 1) + [True]  # the last step's statistics
    assert {"policy_loss", "vf_loss", "entropy", "grad_gnorm", "mean_rho"} <= stats.keys()
    assert all(len(minibatch["value_targets"]) == 4 for minibatch in seen)
    per_pass = len(seen) // 3
    for first in range(0, len(seen), per_pass):
        one_pass = seen[first : first + per_pass]
        for name in ("value_targets", "advantages"):
            got = torch.cat([minibatch[name] for minibatch in one_pass])
            # every step once per pass, with the targets computed before the first step
            torch.testing.assert_close(got.sort().values, expected[name].flatten().sort().values)
    first_pass = torch.cat([minibatch["value_targets"] for minibatch in seen[:per_pass]])
    assert not torch.equal(first_pass, expected["value_targets"].flatten())  # shuffled
    assert not torch.allclose(
        learner._targets(batch, batch["obs"])["value_targets"], expected["value_targets"]
    )  # weights moved


@pytest.mark.parametrize("shape", [(50,), (50, 3), (50, 4, 6, 6)])
def test_take_rows_matches_indexing_and_keeps_the_layout(shape):
    tensor = torch.randint(0, 255, shape, dtype=torch.uint8)
    if len(shape) == 4:
        tensor = channels_last_frames(tensor)
    index = torch.tensor([7, 3, 3, 49, 0])
    rows = take_rows(tensor, index)
    assert torch.equal(rows, tensor[index])
    if len(shape) == 4:
        assert rows.is_contiguous(memory_format=torch.channels_last)


def test_observation_statistics_change_after_the_update_that_learns_from_them():
    """The actors computed the batch's log-probabilities with the statistics the update starts
    from: the update must see the same (PPO's ratio starts at 1), the next batch the new ones."""
    config = config_class("PPO")(normalize_observations=True, num_sgd_iter=1, minibatch_size=0)
    learner = Learner(config, SPEC, torch.device("cpu"))
    batch = one_step_batch(learner, [1.0, -1.0])
    batch["obs"] = torch.tensor([[[5.0, 6.0, 7.0]] * 2, [[5.0, 6.0, 7.0]] * 2])
    with torch.no_grad():
        logits, _ = learner.model(batch["obs"][0])
    actions = batch["actions"][0]
    batch["behaviour_log_probs"] = torch.log_softmax(logits, -1).gather(-1, actions[:, None]).T
    stats = learner.update(batch)
    assert stats["mean_rho"] == pytest.approx(1.0, abs=1e-6)  # one step: ratio before moving
    assert learner.model.obs_norm.mean.tolist() == pytest.approx([5.0, 6.0, 7.0], rel=1e-3)
