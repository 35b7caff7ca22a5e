"""A CartPole policy trained in the test suite, through the platform, for the deploy tests."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from support import ENDPOINT_TOKEN, free_port, wait_until

from rlfleet import Run, RunStatus
from rlfleet.compute.cluster import LocalCluster


@pytest.fixture(scope="session")
def trained_run(trained_cartpole) -> Run:
    """The CartPole policy trained through the platform (tests/conftest.py), at 300."""
    assert trained_cartpole.exit_code == 0, trained_cartpole.shown["error"]
    assert trained_cartpole.run.status is RunStatus.COMPLETED
    assert trained_cartpole.run.get_metric_history("episode_reward_mean")[-1].value >= 300
    return trained_cartpole.run


@pytest.fixture(scope="module")
def endpoint(
    trained_run: Run, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """``rlfleet deploy`` of ``trained_run`` on a free port, with the bearer token
    ``ENDPOINT_TOKEN``; started once per module, stopped (SIGTERM) at its end."""
    folder = tmp_path_factory.mktemp("endpoint")
    token_file = folder / "token"
    token_file.write_text(ENDPOINT_TOKEN)
    port = free_port()
    with open(folder / "deploy.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rlfleet.cli.main", "deploy", trained_run.id, "--port", str(port), "--token-file", str(token_file)],
            cwd=trained_run.workspace.root, stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return proc.poll() is not None  # it died: stop waiting

    assert wait_until(up, timeout=180) and proc.poll() is None, (folder / "deploy.log").read_text()
    yield {"url": url, "proc": proc, "token_file": token_file}
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (folder / "deploy.log").read_text()[-2000:]
    # A module whose tests end soon after /healthz answers stops the endpoint while serve.run
    # is still returning: Ray's own SIGTERM handler used to end the process on the spot,
    # leaving the serving cluster running.
    left = [c for c in LocalCluster.all(trained_run.workspace) if c.owner.startswith("deploy:")]
    assert not left, f"the serving cluster outlived rlfleet deploy: {left}"
