"""The policy as an MLflow model (pyfunc), registered in the workspace's model registry.

The model wraps the TorchScript export, so loading it needs torch and MLflow only:
``mlflow.pyfunc.load_model("models:/NAME/VERSION").predict(observations)`` returns the most
likely actions of the policy's action space and what they come from: ``{"action", "logits",
"value"}`` for Discrete (argmax) and MultiDiscrete (argmax of each entry's part of the logits)
actions, ``{"action", "mean", "log_std", "value"}`` for Box actions (the Gaussian's mean,
clipped to the bounds). The model's code reads the action space from the metadata inside the
TorchScript file (models-from-code: nothing pickled). Each version carries the policy's
metadata and its evaluation score.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow.pyfunc

from rlfleet.deploy.export import export
from rlfleet.deploy.policy import METADATA_KEY

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from rlfleet.deploy.evaluate import Evaluation
    from rlfleet.deploy.policy import Policy
    from rlfleet.runs.run import Run

ARTIFACT_PATH = "policy"


MODEL_CODE = f'''"""An rlfleet policy as an MLflow pyfunc model (models-from-code: nothing pickled)."""

import json

import mlflow
import numpy as np
import torch

METADATA_FILE = "{METADATA_KEY}.json"


class TorchScriptPolicy(mlflow.pyfunc.PythonModel):
    """predict(observations) -> the most likely actions of the policy's action space:
    {{"action", "logits", "value"}} (Discrete: argmax; MultiDiscrete: argmax of each entry's
    part of the logits) or {{"action", "mean", "log_std", "value"}} (Box: the mean clipped to
    the bounds, shaped as the space)."""

    def load_context(self, context):
        extra = {{METADATA_FILE: ""}}
        self.module = torch.jit.load(context.artifacts["torchscript"], _extra_files=extra)
        self.metadata = json.loads(extra[METADATA_FILE])
        self.action = self.metadata.get("action_space") or {{"kind": "discrete"}}

    def predict(self, context, model_input, params=None):
        observations = torch.as_tensor(np.asarray(model_input))
        with torch.no_grad():
            outputs, value = self.module(observations)
        outputs = outputs.float().numpy()
        kind = self.action["kind"]
        if kind == "box":
            low = np.asarray(self.action["low"], np.float32)
            high = np.asarray(self.action["high"], np.float32)
            action = np.clip(outputs, low, high).reshape(len(outputs), *self.action["shape"])
            return {{
                "action": action.tolist(),
                "mean": outputs.tolist(),
                "log_std": self.metadata["log_std"],
                "value": value.tolist(),
            }}
        if kind == "multi_discrete":
            parts = np.split(outputs, np.cumsum(self.action["nvec"])[:-1], axis=-1)
            action = np.stack([part.argmax(-1) for part in parts], axis=-1)
        else:
            action = outputs.argmax(-1)
        return {{"action": action.tolist(), "logits": outputs.tolist(), "value": value.tolist()}}


mlflow.models.set_model(TorchScriptPolicy())
'''


def default_model_name(env_id: str, algorithm: str = "IMPALA") -> str:
    """``cartpole-v1-ppo``: the environment id and the algorithm, as a model name."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", env_id).strip("-").lower()
    return f"{name}-{algorithm.lower()}"


def save(policy: Policy, path: str | Path, *, evaluation: Evaluation | None = None) -> Path:
    """Write the policy as an MLflow pyfunc model in the new folder ``path`` (load it with
    ``mlflow.pyfunc.load_model(path)``); returns ``path``."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        scripted = export(policy, Path(tmp) / "policy.pt", "torchscript")
        code = Path(tmp) / "policy_model.py"
        code.write_text(MODEL_CODE)
        metadata = {"rlfleet_policy": policy.metadata.to_dict()}
        if evaluation is not None:
            metadata["evaluation"] = evaluation.to_dict()
        with warnings.catch_warnings():
            # Observations are any arrays of the env's shape: no type hints to validate against.
            warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")
            mlflow.pyfunc.save_model(
                str(path),
                python_model=str(code),
                artifacts={"torchscript": str(scripted)},
                metadata=metadata,
                pip_requirements=["torch", "numpy", "mlflow"],
            )
    return path


def register(
    policy: Policy, run: Run, evaluation: Evaluation, *, name: str | None = None
) -> ModelVersion:
    """Log the policy to ``run`` as an MLflow pyfunc model and register a new version of it."""
    name = name or default_model_name(policy.metadata.env_id, policy.metadata.algorithm)
    client = run.store.client
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save(policy, Path(tmp) / ARTIFACT_PATH, evaluation=evaluation)
        client.log_artifacts(run.id, str(model_dir), ARTIFACT_PATH)
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):  # already registered: add a version
        client.create_registered_model(name, description="rlfleet policies")
    source = f"{client.get_run(run.id).info.artifact_uri}/{ARTIFACT_PATH}"
    return client.create_model_version(
        name,
        source,
        run_id=run.id,
        tags={
            "env_id": policy.metadata.env_id,
            "algorithm": policy.metadata.algorithm,
            "action_space": policy.action.kind,
            "evaluation_mean_score": f"{evaluation.mean:g}",
            "evaluation_episodes": str(len(evaluation.scores)),
            "checkpoint": policy.metadata.checkpoint or "",
        },
        description=f"mean score {evaluation.mean:g} over {len(evaluation.scores)} episodes",
    )
