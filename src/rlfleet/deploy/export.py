"""``rlfleet export``: a policy that runs without Ray or rlfleet (ONNX or TorchScript).

Both formats take a batch of observations exactly as the environment gives them (uint8 frames
for Atari; the observation normalisation a run learned with is inside the graph) and return two
outputs, in this order:

- Discrete and MultiDiscrete actions: ``logits`` (for MultiDiscrete, one categorical's logits
  per entry of ``nvec``, concatenated) and ``value``;
- Box actions: ``mean``, the diagonal Gaussian policy's mean (unclipped: clip it to the
  bounds, ``action_space.low``/``high`` in the metadata, to act; the metadata's ``log_std`` is
  its state-independent log standard deviation, for sampling), and ``value``.

The metadata (environment id, preprocessing, observation shape and dtype, the action space,
what each output is, action meanings) travels inside the file: ONNX ``metadata_props`` key
``rlfleet_policy``, TorchScript extra file ``rlfleet_policy.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rlfleet.deploy.policy import METADATA_KEY, Policy
from rlfleet.errors import RlfleetError

FORMATS = ("onnx", "torchscript")
OPSET = 17


class _Exported(torch.nn.Module):
    """The network with outputs named and ordered as the exported files promise."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs, value = self.model(observation)
        return outputs, value


def example_batch(policy: Policy, batch: int = 2) -> torch.Tensor:
    meta = policy.metadata
    dtype = getattr(torch, meta.obs_dtype)
    if dtype == torch.uint8:
        return torch.randint(0, 256, (batch, *meta.obs_shape), dtype=dtype)
    return torch.randn(batch, *meta.obs_shape).to(dtype)


def export(policy: Policy, path: str | Path, fmt: str) -> Path:
    """Write the policy to ``path`` in format ``fmt`` (``onnx`` or ``torchscript``)."""
    if fmt not in FORMATS:
        raise RlfleetError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = _Exported(policy.model).eval()
    example = example_batch(policy)
    if fmt == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(module, example)
        torch.jit.save(
            traced, str(path), _extra_files={f"{METADATA_KEY}.json": policy.metadata.to_json()}
        )
        return path
    return _export_onnx(module, example, path, policy)


def _export_onnx(
    module: torch.nn.Module, example: torch.Tensor, path: Path, policy: Policy
) -> Path:
    import onnx

    first = next(iter(policy.metadata.outputs))  # logits, or mean
    with torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=["observation"],
            output_names=[first, "value"],
            dynamic_axes={
                "observation": {0: "batch"},
                first: {0: "batch"},
                "value": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, policy.metadata.to_json()
    model.doc_string = "rlfleet policy: " + policy.metadata.preprocessing.get("description", "")
    onnx.save(model, str(path))
    return path
