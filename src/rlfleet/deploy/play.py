"""``rlfleet play``: the game runs here, every action comes from the endpoint."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import requests

from rlfleet.deploy.envs import make_env
from rlfleet.errors import RlfleetError


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

    def act(self, observation: np.ndarray, *, sample: bool = False) -> int:
        answer = self._call(
            "POST", "/act", json={"observation": observation.tolist(), "sample": sample}
        )
        return int(answer["action"])


def play(
    client: EndpointClient, env_id: str, *, episodes: int, seed: int = 0, sample: bool = False
) -> dict[str, Any]:
    """Play ``episodes`` episodes locally, asking the endpoint for every action."""
    meta = client.metadata()
    if meta["env_id"] != env_id:
        raise RlfleetError(
            f"the endpoint serves a policy for {meta['env_id']}, not {env_id}; use --env {meta['env_id']}."
        )
    env = make_env(env_id, meta["preprocessing"])
    scores, steps_total = [], 0
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(
                    client.act(np.asarray(obs), sample=sample)
                )
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
