"""The MLflow UI of a workspace, in a real headless Chromium: the run, its children, its chart."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest
from support import still_alive, wait_until, write_spec

from rlfleet import RunStatus
from rlfleet.runs.spec import RunSpec
from rlfleet.runs.submit import submit

pytestmark = pytest.mark.cluster
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: scripts/test installs Debian's package")
def test_ui_shows_the_run_its_children_and_the_reward_chart(warm_workspace, tmp_path):
    spec = write_spec(
        tmp_path / "run.yaml",
        entry_script="tasks_on_workers.py",
        script_params={"--tasks": 2},
        worker_configuration={"compute_target": "workers", "node_count": 1},
    )
    run = submit(warm_workspace, RunSpec.from_yaml(spec))  # to the workspace's default experiment
    assert run.wait_for_completion(timeout_s=180) is RunStatus.COMPLETED
    name = warm_workspace.tracking.get_run(run.id).info.run_name
    assert name == "tasks_on_workers.py"  # named after what it runs
    store = warm_workspace.tracking
    experiment = store.experiment(warm_workspace.config.default_experiment).experiment_id
    assert [e.name.lower() for e in store.experiments()].count("default") == 1

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    said = tmp_path / "ui.out"
    with open(said, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "rlfleet.cli.main", "ui", "--port", str(port)],
            cwd=warm_workspace.root, stdout=out, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        assert wait_until(lambda: healthy(url), timeout=60), "rlfleet ui did not come up"
        started = psutil.Process(server.pid).children(recursive=True)
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            # Where `rlfleet ui` says to go: the runs of the default experiment, in MLflow's
            # model-training view; MLflow's usage-data notice is not there (telemetry off).
            landing = said.read_text().split(": ", 1)[1].split()[0]
            assert landing.startswith(f"{url}/#/experiments/{experiment}/runs?"), landing
            page.goto(landing)
            page.get_by_text(name).first.wait_for(timeout=60_000)
            reward = page.get_by_role("columnheader").filter(has_text="episode_reward_mean")
            reward.first.wait_for(timeout=30_000)  # the reward, a column of the run list
            assert "collects usage data" not in page.content()
            page.screenshot(path=str(ARTIFACTS / "ui-landing.png"))
            page.get_by_role("row").filter(has_text=name).locator("button").first.click()
            for role in ("head", "worker"):
                page.get_by_role("link", name=role, exact=True).wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "ui-runs.png"))

            page.goto(
                f"{url}/#/experiments/{experiment}/runs/{run.id}/model-metrics?workflowType=machine_learning"
            )
            page.get_by_text("episode_reward_mean", exact=True).first.wait_for(timeout=60_000)
            # every chart drawn (Plotly lines), the reward's among them
            page.wait_for_function(
                "document.querySelectorAll('path.js-line').length >= 4", timeout=60_000
            )
            page.mouse.move(700, 880)  # no hover tooltip in the picture
            page.screenshot(path=str(ARTIFACTS / "ui-metrics.png"))

            head = run.get_child("head")
            page.goto(
                f"{url}/#/experiments/{experiment}/runs/{head.id}/artifacts?workflowType=machine_learning"
            )
            page.get_by_text("driver_log.txt").first.wait_for(timeout=30_000)
            browser.close()
    finally:
        server.terminate()  # SIGTERM, as a service manager stops it
        server.wait(timeout=30)
    assert not still_alive(started), f"left behind by SIGTERM: {still_alive(started)}"
    assert (ARTIFACTS / "ui-runs.png").stat().st_size > 10_000
    assert (ARTIFACTS / "ui-metrics.png").stat().st_size > 10_000
