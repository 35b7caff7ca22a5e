"""``rlfleet play``: the game runs here, every action comes from the endpoint.

The environment is made as the endpoint's metadata says (its id, preprocessing and the run's
``env_config``), and the endpoint's answers (an int, a list of ints, or a list of floats) are
stepped as the action space takes them.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import requests

from rlfleet.deploy.envs import make_env
from rlfleet.deploy.policy import PolicyMetadata, env_action
from rlfleet.errors import RlfleetError
from rlfleet.impala.spaces import ActionSpec


class EndpointClient:
    """Talks to a policy endpoint (keep-alive session, optional bearer token)."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.timeout_s = timeout_s
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.session.request(
                method, self.url + path, timeout=self.timeout_s, **kwargs
            )
        except requests.RequestException as err:
            raise RlfleetError(f"cannot reach the endpoint at {self.url}: {err}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise RlfleetError(f"the endpoint answered {response.status_code}: {message}")
        return response.json()

    def metadata(self) -> dict[str, Any]:
        return self._call("GET", "/metadata")

    def act(self, observation: np.ndarray, *, sample: bool = False) -> Any:
        """The endpoint's action for one observation: an int (Discrete), a list of ints
        (MultiDiscrete) or a list of floats (Box)."""
        answer = self._call(
            "POST", "/act", json={"observation": observation.tolist(), "sample": sample}
        )
        return answer["action"]


def play(
    client: EndpointClient, env_id: str, *, episodes: int, seed: int = 0, sample: bool = False
) -> dict[str, Any]:
    """Play ``episodes`` episodes locally, asking the endpoint for every action."""
    meta = client.metadata()
    if meta["env_id"] != env_id:
        raise RlfleetError(
            f"the endpoint serves a policy for {meta['env_id']}, not {env_id}; use --env {meta['env_id']}."
        )
    metadata = PolicyMetadata.from_dict(meta)
    spec = metadata.action
    env = make_env(env_id, metadata.preprocessing, env_config=metadata.env_config)
    scores, steps_total = [], 0
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                action = _checked(client.act(np.asarray(obs), sample=sample), spec)
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                steps_total += 1
                done = terminated or truncated
            scores.append(total)
    finally:
        env.close()
    return {
        "env_id": env_id,
        "episodes": episodes,
        "scores": scores,
        "mean": statistics.fmean(scores),
        "median": statistics.median(scores),
        "min": min(scores),
        "max": max(scores),
        "steps": steps_total,
    }


def _checked(answer: Any, spec: ActionSpec) -> Any:
    """The endpoint's ``answer`` as ``env.step`` takes it, or an error saying it is not an
    action of ``spec``."""
    try:
        return env_action(answer, spec)
    except (TypeError, ValueError):
        raise RlfleetError(
            f"the endpoint answered the action {str(answer)[:80]}, which is not an action of "
            f"its {spec.kind} action space of shape {spec.shape}."
        ) from None
