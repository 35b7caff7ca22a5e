"""The policy endpoint on Ray Serve: ``POST /act``, ``GET /healthz``, ``GET /metadata``.

Requests from all clients are batched into one forward pass (``serve.batch``); actions are of
the policy's action space (an int, a list of ints, or a list of floats within the bounds: see
:mod:`rlfleet.deploy.requests` for the answers). Bad requests get
a 4xx with a one-line message (see :mod:`rlfleet.deploy.requests`); an optional bearer token
protects every route but ``/healthz``. The OpenAPI description is at ``/openapi.json``.
"""

import hmac
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from rlfleet.deploy.policy import Policy
from rlfleet.deploy.requests import MAX_BATCH, MAX_BODY_BYTES, BadRequest, act_answer, parse_act

BATCH_WAIT_S = 0.002
REQUESTS_PER_BATCH = 32
"""At most this many requests share a forward pass (each holds up to MAX_BATCH observations)."""
MAX_ONGOING_REQUESTS = 2 * REQUESTS_PER_BATCH
"""Requests a replica takes at once (Serve's default, 5, would keep batches tiny)."""
ACT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "observation": {"type": "array", "description": "one observation"},
                    "observations": {"type": "array", "description": "a batch of observations"},
                    "details": {
                        "type": "boolean",
                        "description": "also return the values and the logits (discrete "
                        "actions) or the Gaussian's mean and log_std (continuous actions)",
                    },
                    "sample": {
                        "type": "boolean",
                        "description": "sample instead of the most likely action (the mean)",
                    },
                },
                "additionalProperties": False,
            }
        }
    },
}
ERRORS = {status: {"description": text} for status, text in [
    (400, "malformed JSON"), (401, "missing or wrong bearer token"),
    (413, "body or batch too large"), (422, "observation of the wrong shape, type or range"),
]}  # fmt: skip

api = FastAPI(title="rlfleet policy endpoint", version="1")


def error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
@serve.ingress(api)
class PolicyEndpoint:
    """One replica: the policy in memory, answering batched requests."""

    def __init__(
        self, checkpoint: bytes, run_id: str | None, token: str | None, max_batch: int = MAX_BATCH
    ) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checkpoint.pt"
            path.write_bytes(checkpoint)
            self.policy = Policy.from_checkpoint(path, run_id=run_id)
        self.token = token
        self.max_batch = max_batch
        self.rng = np.random.default_rng()

    def _authorised(self, request: Request) -> bool:
        if not self.token:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    @api.get("/healthz")
    def healthz(self) -> dict[str, Any]:
        return {"status": "ok", "env_id": self.policy.metadata.env_id}

    @api.get("/metadata", responses=ERRORS)
    def metadata(self, request: Request) -> Any:
        if not self._authorised(request):
            return error(401, "send the endpoint's token as 'Authorization: Bearer TOKEN'.")
        return self.policy.metadata.to_dict()

    @api.post("/act", openapi_extra={"requestBody": ACT_BODY}, responses=ERRORS)
    async def act(self, request: Request) -> Any:
        if not self._authorised(request):
            return error(401, "send the endpoint's token as 'Authorization: Bearer TOKEN'.")
        size = request.headers.get("content-length", "")
        if size.isdigit() and int(size) > MAX_BODY_BYTES:
            return error(413, f"request body is {size} bytes; the limit is {MAX_BODY_BYTES}.")
        try:
            parsed = parse_act(await request.body(), self.policy.metadata, max_batch=self.max_batch)
        except BadRequest as bad:
            return error(bad.status, bad.message)
        actions, outputs, values = await self.infer((parsed.observations, parsed.sample))
        meta = self.policy.metadata
        return act_answer(parsed, self.policy.action, actions, outputs, values, meta.log_std)

    @serve.batch(max_batch_size=REQUESTS_PER_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)
    async def infer(self, requests: list[tuple[np.ndarray, bool]]) -> list[tuple[np.ndarray, ...]]:
        """One forward pass for every request that arrived together; each request's actions are
        then the most likely ones or samples, as it asked."""
        sizes = [obs.shape[0] for obs, _ in requests]
        outputs, values = self.policy.forward(np.concatenate([obs for obs, _ in requests]))
        answers, start = [], 0
        for (_obs, sample), size in zip(requests, sizes, strict=True):
            chunk = slice(start, start + size)
            actions = self.policy.choose(outputs[chunk], greedy=not sample, rng=self.rng)
            answers.append((actions, outputs[chunk], values[chunk]))
            start += size
        return answers


def application(
    checkpoint: bytes, *, run_id: str | None, token: str | None, replicas: int = 1
) -> Any:
    """The Serve application for a checkpoint file's bytes."""
    return PolicyEndpoint.options(
        num_replicas=replicas, max_ongoing_requests=MAX_ONGOING_REQUESTS
    ).bind(checkpoint, run_id, token)
