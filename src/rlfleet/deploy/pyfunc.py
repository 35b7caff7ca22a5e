"""The policy as an MLflow model (pyfunc), registered in the workspace's model registry.

The model wraps the TorchScript export, so loading it needs torch and MLflow only:
``mlflow.pyfunc.load_model("models:/NAME/VERSION").predict(observations)`` returns actions,
logits and values. Each version carries the policy's metadata and its evaluation score.
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

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from rlfleet.deploy.evaluate import Evaluation
    from rlfleet.deploy.policy import Policy
    from rlfleet.runs.run import Run

ARTIFACT_PATH = "policy"


MODEL_CODE = '''"""An rlfleet policy as an MLflow pyfunc model (models-from-code: nothing pickled)."""

import mlflow
import numpy as np
import torch


class TorchScriptPolicy(mlflow.pyfunc.PythonModel):
    """predict(observations) -> {"action", "logits", "value"} (the most likely actions)."""

    def load_context(self, context):
        self.module = torch.jit.load(context.artifacts["torchscript"])

    def predict(self, context, model_input, params=None):
        observations = torch.as_tensor(np.asarray(model_input))
        with torch.no_grad():
            logits, value = self.module(observations)
        return {"action": logits.argmax(-1).tolist(), "logits": logits.tolist(), "value": value.tolist()}


mlflow.models.set_model(TorchScriptPolicy())
'''


def default_model_name(env_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", env_id).strip("-").lower() + "-impala"


def register(
    policy: Policy, run: Run, evaluation: Evaluation, *, name: str | None = None
) -> ModelVersion:
    """Log the policy to ``run`` as an MLflow pyfunc model and register a new version of it."""
    name = name or default_model_name(policy.metadata.env_id)
    client = run.store.client
    with tempfile.TemporaryDirectory() as tmp:
        scripted = export(policy, Path(tmp) / "policy.pt", "torchscript")
        model_dir = Path(tmp) / ARTIFACT_PATH
        code = Path(tmp) / "policy_model.py"
        code.write_text(MODEL_CODE)
        with warnings.catch_warnings():
            # Observations are any arrays of the env's shape: no type hints to validate against.
            warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")
            mlflow.pyfunc.save_model(
                str(model_dir),
                python_model=str(code),
                artifacts={"torchscript": str(scripted)},
                metadata={
                    "rlfleet_policy": policy.metadata.to_dict(),
                    "evaluation": evaluation.to_dict(),
                },
                pip_requirements=["torch", "numpy", "mlflow"],
            )
        client.log_artifacts(run.id, str(model_dir), ARTIFACT_PATH)
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):  # already registered: add a version
        client.create_registered_model(name, description="rlfleet IMPALA policies")
    source = f"{client.get_run(run.id).info.artifact_uri}/{ARTIFACT_PATH}"
    return client.create_model_version(
        name,
        source,
        run_id=run.id,
        tags={
            "env_id": policy.metadata.env_id,
            "evaluation_mean_score": f"{evaluation.mean:g}",
            "evaluation_episodes": str(len(evaluation.scores)),
            "checkpoint": policy.metadata.checkpoint or "",
        },
        description=f"mean score {evaluation.mean:g} over {len(evaluation.scores)} episodes",
    )
