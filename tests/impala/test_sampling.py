from __future__ import annotations

import numpy as np
import torch
from toy_envs import write_toy_envs

from rlfleet.impala.config import ImpalaConfig, ModelConfig
from rlfleet.impala.networks import build_network
from rlfleet.impala.sampling import RolloutWorker


def make_worker(env_id: str, **overrides) -> RolloutWorker:
    config = ImpalaConfig.from_dict(
        {"num_envs_per_worker": 4, "sample_batch_size": 25, **overrides}
    )
    return RolloutWorker(env_id, "IMPALA", config.to_dict(), worker_index=0, torch_threads=None)


def test_rollouts_are_time_major_and_continue_each_other():
    worker = make_worker("CartPole-v1")
    first = worker.sample()
    last_obs = first.arrays["obs"][-1].copy()
    arrays = first.arrays
    assert arrays["obs"].shape == (26, 4, 4)
    assert arrays["actions"].shape == arrays["rewards"].shape == arrays["dones"].shape == (25, 4)
    assert arrays["behaviour_log_probs"].shape == (25, 4)
    second = worker.sample()
    np.testing.assert_array_equal(second.arrays["obs"][0], last_obs)
    worker.close()


def test_next_step_autoreset_steps_are_masked_and_episodes_counted():
    worker = make_worker("CartPole-v1", sample_batch_size=200)
    rollout = worker.sample()
    dones, mask = rollout.arrays["dones"], rollout.arrays["mask"]
    assert dones.any()
    # CartPole's vector env resets on the step after an episode end: that step is masked.
    np.testing.assert_array_equal(mask[1:], ~dones[:-1])
    assert rollout.num_steps == mask.sum()
    assert len(rollout.episode_returns) == dones.sum()
    # CartPole pays 1 per step, so a raw return equals the episode's length.
    np.testing.assert_array_equal(rollout.episode_returns, rollout.episode_lengths)
    worker.close()


def test_atari_rollouts_are_uint8_and_unmasked():
    worker = make_worker("PongNoFrameskip-v4", model={"dim": 42}, env_num_threads=1)
    rollout = worker.sample()
    assert rollout.arrays["obs"].dtype == np.uint8
    assert rollout.arrays["obs"].shape == (26, 4, 4, 42, 42)
    assert rollout.arrays["mask"].all() and rollout.num_steps == 100
    worker.close()


def learner_log_probs(model, rollout, shift: int = 0) -> torch.Tensor:
    """log pi(a_t | x_{t - shift}) of the rollout's actions under ``model`` (flat)."""
    obs = torch.from_numpy(rollout.arrays["obs"][:-1]).flatten(0, 1)
    actions = torch.from_numpy(rollout.arrays["actions"]).flatten(0, 1)
    with torch.no_grad():
        logits, _ = model(obs)
    logits = logits.float()[: len(logits) - shift]
    return torch.log_softmax(logits, -1).gather(-1, actions[shift:, None]).squeeze(-1)


def test_behaviour_log_probs_belong_to_the_stored_observations_and_actions():
    worker = make_worker(
        "PongNoFrameskip-v4", model={"dim": 42}, env_num_threads=1, actor_dtype="float32"
    )
    rollout = worker.sample()
    expected = learner_log_probs(worker.model, rollout)
    recorded = rollout.arrays["behaviour_log_probs"].reshape(expected.shape)
    np.testing.assert_allclose(recorded, expected.numpy(), rtol=1e-4, atol=1e-5)
    worker.close()


def test_a_bfloat16_actor_samples_with_the_learners_policy_up_to_rounding():
    worker = make_worker(
        "PongNoFrameskip-v4", model={"dim": 42}, env_num_threads=1, actor_dtype="bfloat16"
    )
    assert worker.model.policy.weight.dtype == torch.bfloat16
    learner_model = build_network(worker.spec.obs_shape, worker.spec.action, ModelConfig(dim=42))
    generator = torch.Generator().manual_seed(0)
    for parameter in learner_model.parameters():  # weights far from the tiny initial logits
        parameter.data = torch.randn(parameter.shape, generator=generator) * 0.2
    weights = {k: v.numpy() for k, v in learner_model.state_dict().items()}
    rollout = worker.sample(weights, version=1)
    recorded = torch.from_numpy(rollout.arrays["behaviour_log_probs"]).flatten()
    assert recorded.dtype == torch.float32
    learner = learner_log_probs(learner_model, rollout)
    # the stored log-probabilities are those of this step's observations and actions, within
    # bfloat16's rounding
    spread = learner.std()
    assert (recorded - learner).abs().max() < 0.1 * spread
    shifted = learner_log_probs(learner_model, rollout, shift=4)  # one step off (4 envs)
    assert (recorded[4:] - shifted).abs().max() > 5 * (recorded - learner).abs().max()
    worker.close()


def test_time_limits_bootstrap_from_the_value_of_where_the_episode_was_cut(tmp_path, monkeypatch):
    """Target's episodes end by truncation only (3 steps here): those steps are dones for the
    episode count, and carry the value of the final observation to bootstrap from."""
    monkeypatch.syspath_prepend(write_toy_envs(tmp_path))
    worker = make_worker(
        "toyenvs:Target", sample_batch_size=7, env_config={"length": 3}, actor_dtype="float32"
    )
    rollout = worker.sample()
    arrays = rollout.arrays
    cut = np.zeros((7, 4), np.bool_)
    cut[2::3] = True  # every third step of every env
    np.testing.assert_array_equal(arrays["dones"], cut)
    assert (arrays["bootstrap_values"][~cut] == 0).all()
    assert (arrays["bootstrap_values"][cut] != 0).all()
    # the value of the final observation, which is not the next episode's first one
    first_of_next = torch.from_numpy(arrays["obs"][3])
    with torch.no_grad():
        _, values = worker.model(first_of_next)
    assert not np.allclose(arrays["bootstrap_values"][2], values.numpy())
    assert len(rollout.episode_returns) == 2 * 4
    worker.close()
