"""Checking what clients send to the policy endpoint (every bad request gets a 4xx and a clear
message, never a 500) and writing its answers. Pure functions over bytes and arrays, so they are
tested (and fuzzed) directly.

Answers by action space: ``{"action": 3}`` (Discrete), ``{"action": [1, 0, 2]}``
(MultiDiscrete), ``{"action": [0.12, -0.5]}`` (Box: floats within the bounds, nested as the
space's shape), or ``{"actions": [...]}`` of those for a batch. With ``"details": true`` they
also hold ``value`` (``values``) and the policy's outputs: ``logits`` (Discrete, MultiDiscrete)
or the Gaussian's ``mean`` (unclipped) and ``log_std`` (Box).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlfleet.deploy.policy import PolicyMetadata
from rlfleet.impala.spaces import ActionSpec

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_BATCH = 256
KEYS = {"observation", "observations", "details", "sample"}


class BadRequest(Exception):
    """A request the endpoint refuses: ``status`` (4xx) and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ActRequest:
    observations: np.ndarray
    """(batch, *obs_shape), in the policy's observation dtype."""
    single: bool
    """The client sent one ``observation`` (answer with ``action``), not ``observations``."""
    details: bool
    """Also return the policy's outputs (logits, or mean and log_std) and values."""
    sample: bool
    """Sample actions from the policy instead of taking the most likely one (the mean)."""


def parse_act(
    body: bytes,
    meta: PolicyMetadata,
    *,
    max_bytes: int = MAX_BODY_BYTES,
    max_batch: int = MAX_BATCH,
) -> ActRequest:
    """The observations in a ``POST /act`` body, checked against the policy's metadata."""
    if len(body) > max_bytes:
        raise BadRequest(413, f"request body is {len(body)} bytes; the limit is {max_bytes}.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(400, f"request body is not valid JSON: {err}.") from None
    except RecursionError:
        raise BadRequest(400, "request body is nested too deeply.") from None
    if not isinstance(data, dict):
        raise BadRequest(
            422, 'send a JSON object: {"observation": [...]} or {"observations": [[...], ...]}.'
        )
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise BadRequest(
            422, f"unknown field {unknown[0]!r}; fields are {', '.join(sorted(KEYS))}."
        )
    if ("observation" in data) == ("observations" in data):
        raise BadRequest(
            422, 'send exactly one of "observation" (one) or "observations" (a batch).'
        )
    flags = {}
    for flag in ("details", "sample"):
        flags[flag] = data.get(flag, False)
        if not isinstance(flags[flag], bool):
            raise BadRequest(422, f'"{flag}" must be true or false.')
    single = "observation" in data
    name = "observation" if single else "observations"
    if not single and isinstance(data[name], list) and not 1 <= len(data[name]) <= max_batch:
        status = 413 if len(data[name]) > max_batch else 422
        raise BadRequest(
            status,
            f'"observations" must hold 1 to {max_batch} observations, not {len(data[name])}.',
        )
    array = _numbers(data[name], name, meta, batch=not single)
    if not single and not 1 <= array.shape[0] <= max_batch:
        status = 413 if array.shape[0] > max_batch else 422
        raise BadRequest(
            status, f'"observations" must hold 1 to {max_batch} observations, not {array.shape[0]}.'
        )
    batch = array[None] if single else array
    return ActRequest(_as_obs_dtype(batch, name, meta), single, flags["details"], flags["sample"])


def _numbers(value: Any, name: str, meta: PolicyMetadata, *, batch: bool) -> np.ndarray:
    shape = tuple(meta.obs_shape)
    expected = f"(N, {', '.join(map(str, shape))})" if batch else str(shape)
    if not isinstance(value, list):
        raise BadRequest(422, f'"{name}" must be a (nested) list of numbers of shape {expected}.')
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nesting
        raise BadRequest(422, f'"{name}" is ragged; it must have shape {expected}.') from None
    except RecursionError:
        raise BadRequest(
            422, f'"{name}" is nested too deeply; it must have shape {expected}.'
        ) from None
    if array.dtype == object or array.dtype.kind not in "iuf":
        raise BadRequest(422, f'"{name}" must hold numbers only (no strings, booleans or nulls).')
    got = array.shape[1:] if batch else array.shape
    if got != shape or (batch and array.ndim != len(shape) + 1):
        raise BadRequest(422, f'"{name}" has shape {array.shape}; expected {expected}.')
    if not np.isfinite(array.astype(np.float64)).all():
        raise BadRequest(422, f'"{name}" contains NaN or infinity.')
    return array


def _as_obs_dtype(array: np.ndarray, name: str, meta: PolicyMetadata) -> np.ndarray:
    dtype = np.dtype(meta.obs_dtype)
    if dtype.kind == "b":
        if not np.isin(array, (0, 1)).all():
            raise BadRequest(422, f'"{name}" must hold 0 or 1 only ({dtype}).')
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        if (array != np.round(array)).any() or array.min() < info.min or array.max() > info.max:
            raise BadRequest(
                422, f'"{name}" must hold whole numbers from {info.min} to {info.max} ({dtype}).'
            )
    elif np.abs(array).max() > math.sqrt(np.finfo(dtype).max):
        raise BadRequest(422, f'"{name}" holds values too large for {dtype}.')
    return array.astype(dtype)


def act_answer(
    request: ActRequest,
    action: ActionSpec,
    actions: np.ndarray,
    outputs: np.ndarray,
    values: np.ndarray,
    log_std: list[float] | None = None,
) -> dict[str, Any]:
    """The JSON answer to ``request``, from the policy's ``actions``, ``outputs`` (logits, or the
    Gaussian's mean) and ``values`` for its observations; ``log_std`` for Box details."""
    box = action.kind == "box"
    listed = actions.astype(np.float64 if box else np.int64).tolist()
    if request.single:
        answer: dict[str, Any] = {"action": listed[0]}
        if request.details:
            answer["mean" if box else "logits"] = outputs[0].tolist()
            answer["value"] = float(values[0])
    else:
        answer = {"actions": listed}
        if request.details:
            answer["mean" if box else "logits"] = outputs.tolist()
            answer["values"] = values.tolist()
    if request.details and box:
        answer["log_std"] = list(log_std or [])
    return answer
