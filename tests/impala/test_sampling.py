from __future__ import annotations

import numpy as np
import torch

from rlfleet.impala.config import ImpalaConfig, ModelConfig
from rlfleet.impala.networks import build_network
from rlfleet.impala.sampling import RolloutWorker


def make_worker(env_id: str, **overrides) -> RolloutWorker:
    config = ImpalaConfig.from_dict(
        {"num_envs_per_worker": 4, "sample_batch_size": 25, **overrides}
    )
    return RolloutWorker(env_id, config.to_dict(), worker_index=0, torch_threads=None)


def test_rollouts_are_time_major_and_continue_each_other():
    worker = make_worker("CartPole-v1")
    first = worker.sample()
    last_obs = first.arrays["obs"][-1].copy()
    arrays = first.arrays
    assert arrays["obs"].shape == (26, 4, 4)
    assert arrays["actions"].shape == arrays["rewards"].shape == arrays["dones"].shape == (25, 4)
    assert arrays["behaviour_logits"].shape == (25, 4, 2)
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


def test_behaviour_logits_belong_to_the_stored_observations():
    worker = make_worker(
        "PongNoFrameskip-v4", model={"dim": 42}, env_num_threads=1, actor_dtype="float32"
    )
    rollout = worker.sample()
    obs = torch.from_numpy(rollout.arrays["obs"][:-1]).flatten(0, 1)
    with torch.no_grad():
        logits, _ = worker.model(obs)
    expected = rollout.arrays["behaviour_logits"].reshape(logits.shape)
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-4, atol=1e-5)
    worker.close()


def test_a_bfloat16_actor_samples_with_the_learners_policy_up_to_rounding():
    worker = make_worker(
        "PongNoFrameskip-v4", model={"dim": 42}, env_num_threads=1, actor_dtype="bfloat16"
    )
    assert worker.model.policy.weight.dtype == torch.bfloat16
    learner_model = build_network(
        worker.spec.obs_shape, worker.spec.num_actions, ModelConfig(dim=42)
    )
    generator = torch.Generator().manual_seed(0)
    for parameter in learner_model.parameters():  # weights far from the tiny initial logits
        parameter.data = torch.randn(parameter.shape, generator=generator) * 0.05
    weights = {k: v.numpy() for k, v in learner_model.state_dict().items()}
    rollout = worker.sample(weights, version=1)
    recorded = torch.from_numpy(rollout.arrays["behaviour_logits"]).flatten(0, 1)
    assert recorded.dtype == torch.float32
    obs = torch.from_numpy(rollout.arrays["obs"][:-1]).flatten(0, 1)
    with torch.no_grad():
        learner_logits, _ = learner_model(obs)
    # the stored logits are those of this step's observations, within bfloat16's rounding
    spread = learner_logits.std()
    assert (recorded - learner_logits).abs().max() < 0.05 * spread
    shifted = (recorded[4:] - learner_logits[:-4]).abs().max()  # one step off (4 envs)
    assert shifted > 0.2 * spread
    worker.close()
