"""Evaluate (score, video, registered MLflow model) and export (ONNX, TorchScript) a policy
trained in the test suite."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from support import run_cli

from rlfleet.deploy.policy import Policy

pytestmark = pytest.mark.cluster

PLAIN_SCRIPT = """
import json, sys
import numpy as np
obs = np.load(sys.argv[2])
if sys.argv[1] == "onnx":
    import onnxruntime
    session = onnxruntime.InferenceSession(sys.argv[3])
    logits, value = session.run(None, {"observation": obs})
    meta = json.loads(session.get_modelmeta().custom_metadata_map["rlfleet_policy"])
else:
    import torch
    extra = {"rlfleet_policy.json": ""}
    module = torch.jit.load(sys.argv[3], _extra_files=extra)
    with torch.no_grad():
        logits, value = (t.numpy() for t in module(torch.from_numpy(obs)))
    meta = json.loads(extra["rlfleet_policy.json"])
assert not any(m == "rlfleet" or m.startswith(("rlfleet.", "ray")) for m in sys.modules), "imported rlfleet or ray"
np.save(sys.argv[4], logits)
print(json.dumps(meta))
"""


def test_evaluate_scores_films_and_registers(trained_run, tmp_path):
    video = tmp_path / "cartpole.mp4"
    result = run_cli(
        "evaluate",
        trained_run.id,
        "--episodes",
        "5",
        "--video",
        str(video),
        "--json",
        cwd=trained_run.workspace.root,
    )
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert len(summary["scores"]) == 5 and summary["mean"] == pytest.approx(
        np.mean(summary["scores"])
    )
    assert summary["mean"] >= 150, summary  # the policy learned
    assert video.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    artifacts = trained_run.store.list_artifacts(trained_run.id, "evaluation")
    assert sorted(artifacts) == ["evaluation/cartpole.mp4", "evaluation/results.json"]
    assert trained_run.get_metric_history("evaluation_mean_score")[-1].value == summary["mean"]

    import mlflow

    mlflow.set_tracking_uri(trained_run.workspace.tracking_uri)
    name, version = summary["model"]["name"], summary["model"]["version"]
    registered = trained_run.store.client.get_model_version(name, str(version))
    assert registered.tags["evaluation_mean_score"] == f"{summary['mean']:g}"
    assert registered.tags["env_id"] == "CartPole-v1"
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    assert model.metadata.metadata["rlfleet_policy"]["env_id"] == "CartPole-v1"
    obs = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    _, logits, _ = Policy.from_run(trained_run).act(obs)
    np.testing.assert_allclose(model.predict(obs)["logits"], logits, atol=1e-5)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_policy_reproduces_the_logits_without_ray_or_rlfleet(trained_run, tmp_path, fmt):
    path = tmp_path / f"policy.{fmt}"
    result = run_cli(
        "export", trained_run.id, "--format", fmt, "-o", str(path), cwd=trained_run.workspace.root
    )
    assert result.code == 0, result.err
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    script = tmp_path / "plain.py"
    script.write_text(PLAIN_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), fmt, str(tmp_path / "obs.npy"), str(path), str(tmp_path / "logits.npy")],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    meta = json.loads(out.stdout)
    assert meta["env_id"] == "CartPole-v1" and meta["obs_shape"] == [4] and meta["num_actions"] == 2
    _, expected, _ = Policy.from_run(trained_run).act(obs)
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, atol=1e-5, rtol=0)


def test_unknown_run_or_format(workspace, tmp_path):
    bad = run_cli(
        "export", "nope", "--format", "onnx", "-o", str(tmp_path / "x"), cwd=workspace.root
    )
    assert bad.code != 0 and bad.err.startswith("rlfleet: error: no run with id")
    bad = run_cli(
        "export", "nope", "--format", "keras", "-o", str(tmp_path / "x"), cwd=workspace.root
    )
    assert bad.code == 2 and "invalid choice" in bad.err
