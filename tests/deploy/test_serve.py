"""``rlfleet deploy`` on Ray Serve and ``rlfleet play`` against it, end to end."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from support import ENDPOINT_TOKEN, processes_with, run_cli

from rlfleet.compute.cluster import LocalCluster
from rlfleet.deploy.policy import Policy

pytestmark = pytest.mark.cluster
TOKEN = ENDPOINT_TOKEN


def post(url: str, body: bytes | str, token: str | None = TOKEN) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(f"{url}/act", data=body, headers=headers, timeout=30)


def test_act_single_and_batched_with_details(endpoint, trained_run):
    obs = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    actions, logits, values = Policy.from_run(trained_run).act(obs)
    one = post(endpoint["url"], json.dumps({"observation": obs[0].tolist(), "details": True}))
    assert one.status_code == 200
    assert one.json()["action"] == actions[0]
    np.testing.assert_allclose(one.json()["logits"], logits[0], atol=1e-5)
    assert one.json()["value"] == pytest.approx(values[0], abs=1e-4)
    many = post(endpoint["url"], json.dumps({"observations": obs.tolist()}))
    assert many.json() == {"actions": actions.tolist()}


def test_requests_are_batched_across_clients(endpoint, trained_run):
    obs = np.random.default_rng(4).normal(size=(64, 4)).astype(np.float32)
    expected, _, _ = Policy.from_run(trained_run).act(obs)

    def ask(i: int) -> int:
        return post(endpoint["url"], json.dumps({"observation": obs[i].tolist()})).json()["action"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(ask, range(64)))
    assert answers == expected.tolist()


@pytest.mark.parametrize(
    ("body", "token", "status", "fragment"),
    [
        ("{not json", TOKEN, 400, "not valid JSON"),
        ("[1, 2, 3, 4]", TOKEN, 422, "send a JSON object"),
        ('{"observation": [1, 2, 3]}', TOKEN, 422, "has shape (3,); expected (4,)"),
        ('{"observation": [[1, 2], [3, 4]]}', TOKEN, 422, "expected (4,)"),
        ('{"observations": [[1, 2, 3, 4], [1, 2]]}', TOKEN, 422, "ragged"),
        ('{"observation": ["a", 1, 2, 3]}', TOKEN, 422, "numbers only"),
        ('{"observation": [true, false, true, false]}', TOKEN, 422, "numbers only"),
        ('{"observation": [NaN, 1, 2, 3]}', TOKEN, 422, "NaN or infinity"),
        ('{"observation": [1e400, 1, 2, 3]}', TOKEN, 422, "NaN or infinity"),
        ('{"observation": [1e300, 1, 2, 3]}', TOKEN, 422, "too large for float32"),
        ('{"observations": []}', TOKEN, 422, "1 to 256 observations"),
        (json.dumps({"observations": [[0, 0, 0, 0]] * 300}), TOKEN, 413, "1 to 256 observations"),
        ('{"observation": [1, 2, 3, 4], "colour": 1}', TOKEN, 422, "unknown field 'colour'"),
        (
            '{"observation": [1, 2, 3, 4], "observations": [[1, 2, 3, 4]]}',
            TOKEN,
            422,
            "exactly one",
        ),
        ('{"observation": [1, 2, 3, 4], "details": "yes"}', TOKEN, 422, "true or false"),
        ('{"observation": [1, 2, 3, 4]}', None, 401, "Bearer"),
        ('{"observation": [1, 2, 3, 4]}', "wrong", 401, "Bearer"),
        ('{"observation": [' + "0," * 4_500_000 + "0]}", TOKEN, 413, "limit"),
    ],
)
def test_bad_requests_get_a_clear_4xx(endpoint, body, token, status, fragment):
    response = post(endpoint["url"], body, token=token)
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert fragment in message and "\n" not in message


def test_play_through_the_endpoint_matches_evaluate(endpoint, trained_run):
    played = run_cli(
        "play", "--endpoint", endpoint["url"], "--env", "CartPole-v1", "--episodes", "2",
        "--token-file", str(endpoint["token_file"]), "--json", cwd=trained_run.workspace.root,
    )  # fmt: skip
    assert played.code == 0, played.err
    evaluated = run_cli(
        "evaluate",
        trained_run.id,
        "--episodes",
        "2",
        "--no-register",
        "--json",
        cwd=trained_run.workspace.root,
    )
    play_mean, eval_mean = json.loads(played.out)["mean"], json.loads(evaluated.out)["mean"]
    assert abs(play_mean - eval_mean) <= 0.1 * eval_mean + 1, (play_mean, eval_mean)
    wrong_env = run_cli(
        "play",
        "--endpoint",
        endpoint["url"],
        "--env",
        "Acrobot-v1",
        "--token-file",
        str(endpoint["token_file"]),
        cwd=trained_run.workspace.root,
    )
    assert wrong_env.code != 0 and "serves a policy for CartPole-v1" in wrong_env.err


def test_endpoint_binds_loopback_and_stops_cleanly_on_sigterm(endpoint, served_run):
    port = int(endpoint["url"].rsplit(":", 1)[1])
    import psutil

    listening = [
        c.laddr.ip
        for c in psutil.net_connections("tcp")
        if c.status == "LISTEN" and c.laddr.port == port
    ]
    assert listening == ["127.0.0.1"]
    clusters = [c for c in LocalCluster.all(served_run.workspace) if c.owner.startswith("deploy:")]
    assert len(clusters) == 1
    proc = endpoint["proc"]
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert time.monotonic() - started < 30
    assert processes_with(f"rlfleet/{clusters[0].cluster_id}") == []
    assert not any(c.owner.startswith("deploy:") for c in LocalCluster.all(served_run.workspace))
