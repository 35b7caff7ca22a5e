"""Deploying policies of every action space: Discrete (CartPole), MultiDiscrete (an environment
of the user's own, written here, with Dict observations) and Box (Pendulum, with observation
normalisation), from checkpoints of the built-in trainer made in this process in seconds.

Policy loading without the environment, greedy and sampled actions, ONNX and TorchScript
exports (run with onnxruntime and torch alone), evaluation with an MP4 video, the endpoint's
request checking and answers, play, and the MLflow pyfunc model. Serving a Box policy with
``rlfleet deploy`` is tested with the user's own environment (tests/test_train_own_env.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pytest

from rlfleet.deploy.evaluate import evaluate
from rlfleet.deploy.export import export
from rlfleet.deploy.play import play
from rlfleet.deploy.policy import Policy, PolicyMetadata
from rlfleet.deploy.pyfunc import save
from rlfleet.deploy.requests import BadRequest, act_answer, parse_act
from rlfleet.impala.checkpoint import load_checkpoint, save_checkpoint
from rlfleet.impala.config import StopConfig, config_class
from rlfleet.impala.loop import Trainer, train

PENDULUM_CONFIG = {
    "num_workers": 0,
    "num_envs_per_worker": 4,
    "sample_batch_size": 64,
    "minibatch_size": 128,
    "num_sgd_iter": 2,
    "min_time_s_per_iteration": 0,
    "normalize_observations": True,
    "env_config": {"max_episode_steps": 40},  # short episodes, for evaluate
}
CHOICES_ENV = '''
"""Three dials (3, 2 and 4 settings): reward 1 for each dial set as the observation says."""

import gymnasium
import numpy as np
from gymnasium import spaces

NVEC = [3, 2, 4]


class ChoicesEnv(gymnasium.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, steps=5, render_mode=None):
        self.steps, self.render_mode = steps, render_mode
        self.observation_space = spaces.Dict(
            {"target": spaces.MultiDiscrete(NVEC), "time": spaces.Box(0, 1, (1,), np.float32)}
        )
        self.action_space = spaces.MultiDiscrete(NVEC)

    def _observation(self):
        time = np.array([self.t / self.steps], np.float32)
        return {"target": self.target.copy(), "time": time}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.target = 0, self.np_random.integers(0, NVEC)
        return self._observation(), {}

    def step(self, action):
        action = np.asarray(action)
        assert action.shape == (3,) and action.dtype.kind in "iu", action
        reward = float((action == self.target).sum())
        self.t, self.target = self.t + 1, self.np_random.integers(0, NVEC)
        return self._observation(), reward, False, self.t >= self.steps, {}

    def render(self):
        return np.full((32, 48, 3), 40 * self.t, np.uint8)
'''


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PPO checkpoint of Pendulum-v1 after two updates (non-trivial observation statistics)."""
    folder = tmp_path_factory.mktemp("pendulum")
    config = config_class("PPO").from_dict(PENDULUM_CONFIG)
    train("Pendulum-v1", config, StopConfig(training_iteration=2), checkpoint_dir=folder)
    [path] = folder.glob("checkpoint_*.pt")
    return path


@pytest.fixture(scope="module")
def choices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An untrained IMPALA checkpoint of the user's own MultiDiscrete environment, and the
    folder of its code (on no import path)."""
    folder = tmp_path_factory.mktemp("choices")
    code = folder / "code"
    code.mkdir()
    (code / "choices_env.py").write_text(CHOICES_ENV)
    sys.path.insert(0, str(code))
    try:
        config = config_class("IMPALA").from_dict({"num_workers": 0, "num_envs_per_worker": 2})
        trainer = Trainer("choices_env:ChoicesEnv", config)
        path = trainer.save(folder)
        trainer.close()
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("choices_env", None)
    return path, code


@pytest.fixture
def choices_code(choices: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The environment's code importable for one test."""
    monkeypatch.syspath_prepend(str(choices[1]))
    yield choices[1]
    sys.modules.pop("choices_env", None)


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cartpole")
    config = config_class("IMPALA").from_dict({"num_workers": 0, "num_envs_per_worker": 2})
    trainer = Trainer("CartPole-v1", config)
    path = trainer.save(folder)
    trainer.close()
    return path


def observations(policy: Policy, n: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *policy.metadata.obs_shape)).astype(policy.metadata.obs_dtype)


# -- Box: Pendulum ------------------------------------------------------------------------------


def test_box_policy_metadata_describes_the_gaussian(pendulum):
    policy = Policy.from_checkpoint(pendulum)
    meta = policy.metadata
    assert meta.env_id == "Pendulum-v1" and meta.algorithm == "PPO"
    assert meta.action_space == {
        "kind": "box", "shape": [1], "n": 0, "nvec": [], "low": [-2.0], "high": [2.0],
    }  # fmt: skip
    assert meta.num_actions is None  # not a discrete policy: read action_space
    assert list(meta.outputs) == ["mean", "value"] and "unclipped" in meta.outputs["mean"]
    assert meta.log_std == policy.model.log_std.tolist() and len(meta.log_std) == 1
    assert meta.env_config == {"max_episode_steps": 40}
    assert PolicyMetadata.from_dict(json.loads(meta.to_json())) == meta
    norm = policy.model.obs_norm  # the statistics the export must carry
    assert norm.count > 100 and norm.mean.abs().max() > 0.1


def test_box_actions_are_the_clipped_mean_or_clipped_samples(pendulum):
    policy = Policy.from_checkpoint(pendulum)
    obs = observations(policy, 64) * 5
    actions, mean, values = policy.act(obs, greedy=True)
    assert actions.dtype == np.float32 and actions.shape == (64, 1) and values.shape == (64,)
    np.testing.assert_array_equal(actions, np.clip(mean, -2.0, 2.0))
    far = policy.choose(np.array([[5.0], [-7.0], [0.25]], np.float32))
    np.testing.assert_array_equal(far, [[2.0], [-2.0], [0.25]])

    sampled, mean, _ = policy.act(obs, greedy=False, rng=np.random.default_rng(7))
    noise = np.random.default_rng(7).standard_normal(mean.shape).astype(np.float32)
    std = np.exp(np.float32(policy.metadata.log_std[0]))
    np.testing.assert_allclose(sampled, np.clip(mean + std * noise, -2, 2), rtol=0, atol=1e-6)
    assert (np.abs(sampled) <= 2.0).all() and not np.array_equal(sampled, actions)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_box_exports_give_the_mean_with_the_normalisation_inside(pendulum, tmp_path, fmt):
    policy = Policy.from_checkpoint(pendulum)
    obs = observations(policy, 32) * 3
    _, mean, values = policy.act(obs)
    path = export(policy, tmp_path / f"policy.{fmt}", fmt)
    got_mean, got_values, meta = run_exported(fmt, path, obs, tmp_path)
    np.testing.assert_allclose(got_mean, mean, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got_values, values, rtol=0, atol=1e-4)
    assert meta["action_space"]["kind"] == "box" and meta["log_std"] == policy.metadata.log_std
    assert list(meta["outputs"]) == ["mean", "value"]
    # the exported graph normalises: without its statistics the network answers otherwise
    norm, policy.model.obs_norm = policy.model.obs_norm, None
    try:
        unnormalised, _ = policy.forward(obs)
    finally:
        policy.model.obs_norm = norm
    assert np.abs(unnormalised - got_mean).max() > 1e-3


PLAIN_SCRIPT = """
import json, sys
import numpy as np
obs = np.load(sys.argv[2])
if sys.argv[1] == "onnx":
    import onnxruntime
    session = onnxruntime.InferenceSession(sys.argv[3])
    names = [o.name for o in session.get_outputs()]
    first, value = session.run(None, {"observation": obs})
    meta = json.loads(session.get_modelmeta().custom_metadata_map["rlfleet_policy"])
    assert names == list(meta["outputs"]), (names, list(meta["outputs"]))
else:
    import torch
    extra = {"rlfleet_policy.json": ""}
    module = torch.jit.load(sys.argv[3], _extra_files=extra)
    with torch.no_grad():
        first, value = (t.numpy() for t in module(torch.from_numpy(obs)))
    meta = json.loads(extra["rlfleet_policy.json"])
assert not any(m == "rlfleet" or m.startswith(("rlfleet.", "ray")) for m in sys.modules)
np.save(sys.argv[4], first)
np.save(sys.argv[5], value)
print(json.dumps(meta))
"""


def run_exported(
    fmt: str, path: Path, obs: np.ndarray, folder: Path
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The exported file's two outputs and its metadata, from onnxruntime or torch alone."""
    np.save(folder / "obs.npy", obs)
    script = folder / "plain.py"
    script.write_text(PLAIN_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), fmt, str(folder / "obs.npy"), str(path), str(folder / "first.npy"), str(folder / "value.npy")],
        capture_output=True, text=True, cwd=folder, check=False, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return np.load(folder / "first.npy"), np.load(folder / "value.npy"), json.loads(out.stdout)


def test_evaluate_box_policy_films_a_moving_mp4(pendulum, tmp_path):
    import imageio.v3 as iio

    policy = Policy.from_checkpoint(pendulum)
    video = tmp_path / "pendulum.mp4"
    result = evaluate(policy, episodes=3, greedy=True, seed=1, video=video)
    assert result.lengths == [40, 40, 40]  # the run's env_config made the episodes
    assert all(-40 * 16.3 <= s <= 0 for s in result.scores), result.scores
    assert video.read_bytes()[4:8] == b"ftyp"
    frames = iio.imread(video)
    assert frames.shape[0] == 41 and frames.shape[-1] == 3  # before each step, and the end
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 1  # the pendulum moved
    again = evaluate(policy, episodes=3, greedy=True, seed=1)
    assert again.scores == result.scores


def test_box_requests_and_answers(pendulum):
    policy = Policy.from_checkpoint(pendulum)
    meta = policy.metadata
    one = parse_act(b'{"observation": [0.5, -0.5, 3.0], "details": true}', meta)
    actions, mean, values = policy.act(one.observations)
    answer = json.loads(
        json.dumps(act_answer(one, policy.action, actions, mean, values, meta.log_std))
    )
    assert set(answer) == {"action", "mean", "log_std", "value"}
    assert isinstance(answer["action"], list) and isinstance(answer["action"][0], float)
    assert answer["action"] == [float(np.clip(mean[0, 0], -2, 2))]
    assert answer["mean"] == pytest.approx(mean[0].tolist()) and answer["log_std"] == meta.log_std
    assert answer["value"] == pytest.approx(float(values[0]))

    body = {"observations": [[1, 0, 0], [0, 1, 8.0]], "sample": True}
    many = parse_act(json.dumps(body).encode(), meta)
    assert many.sample and not many.single and many.observations.dtype == np.float32
    outputs, values = policy.forward(many.observations)
    sampled = policy.choose(outputs, greedy=False, rng=np.random.default_rng(0))
    answer = act_answer(many, policy.action, sampled, outputs, values)
    assert set(answer) == {"actions"} and len(answer["actions"]) == 2
    assert all(-2.0 <= a[0] <= 2.0 and isinstance(a[0], float) for a in answer["actions"])

    for bad, fragment in [
        (b'{"observation": [1, 2]}', "expected (3,)"),
        (b'{"observation": [1, 2, NaN]}', "NaN"),
        (b'{"observation": [1, 2, 1e300]}', "too large for float32"),
        (b'{"observation": [true, false, true]}', "numbers only"),
    ]:
        with pytest.raises(BadRequest) as refused:
            parse_act(bad, meta)
        assert refused.value.status == 422 and fragment in refused.value.message


def test_pyfunc_model_predicts_clipped_means(pendulum, tmp_path):
    policy = Policy.from_checkpoint(pendulum)
    model = mlflow.pyfunc.load_model(str(save(policy, tmp_path / "model")))
    obs = observations(policy, 8) * 4
    actions, mean, values = policy.act(obs)
    predicted = model.predict(obs)
    np.testing.assert_allclose(predicted["action"], actions, rtol=0, atol=1e-6)
    np.testing.assert_allclose(predicted["mean"], mean, rtol=0, atol=1e-5)
    np.testing.assert_allclose(predicted["value"], values, rtol=0, atol=1e-4)
    assert predicted["log_std"] == policy.metadata.log_std
    assert model.metadata.metadata["rlfleet_policy"]["action_space"]["kind"] == "box"


class InProcessEndpoint:
    """The endpoint's request and answer path (requests.parse_act and act_answer, as
    serve.py uses them), in this process, JSON both ways, for ``play``."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.rng = np.random.default_rng(0)

    def metadata(self) -> dict[str, Any]:
        return json.loads(self.policy.metadata.to_json())

    def act(self, observation: np.ndarray, *, sample: bool = False) -> Any:
        body = json.dumps({"observation": observation.tolist(), "sample": sample}).encode()
        parsed = parse_act(body, self.policy.metadata)
        outputs, values = self.policy.forward(parsed.observations)
        actions = self.policy.choose(outputs, greedy=not sample, rng=self.rng)
        meta = self.policy.metadata
        answer = act_answer(parsed, self.policy.action, actions, outputs, values, meta.log_std)
        return json.loads(json.dumps(answer))["action"]


def test_play_steps_list_actions(pendulum):
    policy = Policy.from_checkpoint(pendulum)
    played = play(InProcessEndpoint(policy), "Pendulum-v1", episodes=2, seed=1)
    evaluated = evaluate(policy, episodes=2, greedy=True, seed=1)
    assert played["steps"] == 80
    np.testing.assert_allclose(played["scores"], evaluated.scores, rtol=1e-5)


# -- MultiDiscrete: the user's own environment ------------------------------------------------


def test_multi_discrete_policy_needs_no_environment_code(choices):
    path, _ = choices
    with pytest.raises(ModuleNotFoundError):
        __import__("choices_env")
    policy = Policy.from_checkpoint(path)  # from the checkpoint's env_spec alone
    meta = policy.metadata
    assert meta.env_id == "choices_env:ChoicesEnv" and meta.obs_shape == [10]
    assert meta.action_space["kind"] == "multi_discrete" and meta.action_space["nvec"] == [3, 2, 4]
    assert meta.num_actions is None and meta.log_std is None
    assert list(meta.outputs) == ["logits", "value"] and "[3, 2, 4]" in meta.outputs["logits"]

    obs = observations(policy, 64)
    actions, logits, _ = policy.act(obs)
    assert actions.shape == (64, 3) and actions.dtype == np.int64 and logits.shape == (64, 9)
    parts = np.split(logits, [3, 5], axis=-1)
    np.testing.assert_array_equal(actions, np.stack([p.argmax(-1) for p in parts], axis=-1))
    sampled, _, _ = policy.act(obs, greedy=False, rng=np.random.default_rng(0))
    assert ((sampled >= 0) & (sampled < [3, 2, 4])).all()
    assert len({tuple(a) for a in sampled}) > 5  # near-uniform at initialisation

    one = parse_act(json.dumps({"observation": obs[0].tolist()}).encode(), meta)
    answer = act_answer(one, policy.action, *policy.act(one.observations))
    assert answer == {"action": actions[0].tolist()}
    assert all(isinstance(a, int) for a in answer["action"])


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_multi_discrete_exports_give_the_logits(choices, tmp_path, fmt):
    policy = Policy.from_checkpoint(choices[0])
    obs = observations(policy, 8)
    _, logits, _ = policy.act(obs)
    got, _, meta = run_exported(fmt, export(policy, tmp_path / "p", fmt), obs, tmp_path)
    np.testing.assert_allclose(got, logits, rtol=0, atol=1e-5)
    assert meta["action_space"]["nvec"] == [3, 2, 4]


def test_multi_discrete_evaluate_and_pyfunc(choices, choices_code, tmp_path):
    policy = Policy.from_checkpoint(choices[0])
    result = evaluate(policy, episodes=2, greedy=False, video=tmp_path / "dials.gif")
    assert result.lengths == [5, 5] and all(0 <= s <= 15 for s in result.scores)
    assert (tmp_path / "dials.gif").read_bytes()[:3] == b"GIF"
    played = play(InProcessEndpoint(policy), "choices_env:ChoicesEnv", episodes=2)
    assert played["steps"] == 10

    model = mlflow.pyfunc.load_model(str(save(policy, tmp_path / "model")))
    obs = observations(policy, 8)
    actions, logits, _ = policy.act(obs)
    predicted = model.predict(obs)
    assert predicted["action"] == actions.tolist()
    np.testing.assert_allclose(predicted["logits"], logits, rtol=0, atol=1e-5)


# -- Discrete: CartPole, and checkpoints from before env_spec ----------------------------------


def test_discrete_policy_and_answers_keep_their_form(cartpole):
    policy = Policy.from_checkpoint(cartpole)
    meta = policy.metadata
    assert meta.num_actions == 2 and meta.action_space["kind"] == "discrete"
    assert list(meta.outputs) == ["logits", "value"] and meta.log_std is None
    obs = observations(policy, 32)
    actions, logits, _ = policy.act(obs)
    np.testing.assert_array_equal(actions, logits.argmax(-1))
    sampled, _, _ = policy.act(obs, greedy=False, rng=np.random.default_rng(0))
    assert set(sampled.tolist()) == {0, 1}

    one = parse_act(b'{"observation": [0.1, 0, 0, 0], "details": true}', meta)
    answer = act_answer(one, policy.action, *policy.act(one.observations))
    assert set(answer) == {"action", "logits", "value"} and isinstance(answer["action"], int)
    many = parse_act(json.dumps({"observations": obs[:3].tolist()}).encode(), meta)
    assert act_answer(many, policy.action, *policy.act(many.observations)) == {
        "actions": actions[:3].tolist()
    }


def test_old_checkpoint_without_env_spec_builds_the_environment(cartpole, tmp_path):
    old = load_checkpoint(cartpole)
    old.env_spec = None
    path = save_checkpoint(tmp_path, old)
    policy = Policy.from_checkpoint(path)
    assert policy.metadata == Policy.from_checkpoint(cartpole).metadata
    obs = observations(policy, 4)
    np.testing.assert_array_equal(policy.act(obs)[1], Policy.from_checkpoint(cartpole).act(obs)[1])


def test_observation_dtypes_are_checked_strictly():
    def meta(dtype: str) -> PolicyMetadata:
        return PolicyMetadata("X-v0", [2], dtype, 2, None, {"kind": "none"}, "mlp")

    assert parse_act(b'{"observation": [0, 1]}', meta("bool")).observations.dtype == np.bool_
    assert parse_act(b'{"observation": [3, -4]}', meta("int8")).observations.tolist() == [[3, -4]]
    for dtype, body, fragment in [
        ("bool", b'{"observation": [0, 2]}', "0 or 1"),
        ("bool", b'{"observation": [0.5, 1]}', "0 or 1"),
        ("int8", b'{"observation": [0, 200]}', "whole numbers from -128 to 127"),
        ("uint8", b'{"observation": [0, 1.5]}', "whole numbers"),
        ("float64", b'{"observation": [0, 1e200]}', "too large for float64"),
    ]:
        with pytest.raises(BadRequest) as refused:
            parse_act(body, meta(dtype))
        assert refused.value.status == 422 and fragment in refused.value.message, dtype
