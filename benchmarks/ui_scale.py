"""The MLflow UI with a large history: 1,000 runs in one experiment, one run with 100,000 points.

Fills a throw-away workspace's embedded store, starts `rlfleet ui`, and times in headless
Chromium (Debian's package) how long the run list and the 100,000-point chart take to appear:
first on a fresh browser cache (MLflow's JavaScript fetched and compiled), then with it cached,
as for a user who comes back. Three times per load: opening the UI at the experiment's run list
(MLflow's front end starts: about 40 script chunks, ~2 s on 2 cores with an empty store), the
big run's chart, and the run list again from inside the app (as the UI's own links go; the
search for the runs itself takes some 50 ms on the server). Goal: under 2 s.

    .venv/bin/python benchmarks/ui_scale.py [--runs 1000] [--points 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.entities import Metric, Param

from rlfleet import Workspace

if TYPE_CHECKING:
    from playwright.sync_api import Page

ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


def fill(ws: Workspace, runs: int, points: int) -> tuple[str, str, str]:
    store = ws.tracking
    experiment = store.experiment("scale").experiment_id
    client = store.client
    now = int(time.time() * 1000)
    started = time.monotonic()
    for index in range(runs):
        run_id = store.create_run(experiment, name=f"run-{index:04d}")
        client.log_batch(
            run_id,
            metrics=[Metric("episode_reward_mean", -21 + (index % 40), now, i) for i in range(3)],
            params=[Param("lr", str(0.0001 * (index % 7 + 1)))],
        )
        client.set_terminated(run_id)
    big = store.create_run(experiment, name="big-run")
    for start in range(0, points, 1000):
        batch = [
            Metric("episode_reward_mean", -21 + 39 * step / points, now + step, step)
            for step in range(start, min(points, start + 1000))
        ]
        client.log_batch(big, metrics=batch)
    client.set_terminated(big)
    print(f"filled {runs} runs and one of {points:,} points in {time.monotonic() - started:.0f} s")
    return experiment, big, "big-run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium (scripts/test installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        experiment, big, big_name = fill(ws, args.runs, args.points)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "rlfleet.cli.main", "ui", "--port", str(port)],
            cwd=ws.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(120):
                try:
                    urllib.request.urlopen(f"{url}/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            cold: tuple[float, float, float] | None = None
            list_times, chart_times, back_times = [], [], []
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
                # One browser profile: the first load fetches MLflow's JavaScript (a fresh
                # cache, as on a first visit); the later ones find it in the browser's cache,
                # as a user coming back to the UI does.
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                for attempt in range(args.repeat + 1):
                    page = context.new_page()
                    times = load(page, url, experiment, big, big_name)
                    label = "cold cache" if attempt == 0 else f"load {attempt}"
                    print(
                        f"{label}: UI opened at the run list {times[0]:.2f} s, "
                        f"{args.points:,}-point chart {times[1]:.2f} s, "
                        f"back to the run list {times[2]:.2f} s"
                    )
                    if attempt:
                        list_times.append(times[0])
                        chart_times.append(times[1])
                        back_times.append(times[2])
                    else:
                        cold = times
                    page.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert cold is not None
    median = statistics.median
    print(
        f"median over {args.repeat} loads (goal < 2 s each): run list in the app "
        f"{median(back_times):.2f} s, chart {median(chart_times):.2f} s; opening the UI at the "
        f"run list {median(list_times):.2f} s (first visit, cold cache: {cold[0]:.2f} s)"
    )


def load(
    page: Page, url: str, experiment: str, big: str, big_name: str
) -> tuple[float, float, float]:
    """Open the UI at the experiment's run list until the big run shows, go to the big run's
    charts until a line is drawn, and back to the run list; the three times in seconds."""
    t0 = time.monotonic()
    page.goto(f"{url}/#/experiments/{experiment}/runs?workflowType=machine_learning")
    page.get_by_text(big_name).first.wait_for(timeout=60_000)
    list_s = time.monotonic() - t0
    t0 = time.monotonic()
    page.goto(
        f"{url}/#/experiments/{experiment}/runs/{big}/model-metrics?workflowType=machine_learning"
    )
    page.locator("path.js-line").first.wait_for(timeout=60_000)
    chart_s = time.monotonic() - t0
    t0 = time.monotonic()  # back to the run list inside the app, as its links do
    page.goto(f"{url}/#/experiments/{experiment}/runs?workflowType=machine_learning")
    page.get_by_text(big_name).first.wait_for(timeout=60_000)
    return list_s, chart_s, time.monotonic() - t0


if __name__ == "__main__":
    main()
