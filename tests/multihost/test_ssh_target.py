"""Compute on the user's own hosts (an ``ssh`` target): rlfleet starts Ray there with Ray's
cluster launcher, over SSH. The head on host ``a``, worker nodes on ``b`` and ``c`` (started by
the autoscaler as runs ask for them), the client and its tracking server on ``client``, whose
workspace the other hosts cannot see."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from multihost.conftest import ray_left, rlfleet, ssh_workspace
from multihost.hosts import Network, host_env
from support import wait_until

pytestmark = [pytest.mark.multihost, pytest.mark.xdist_group("multihost"), pytest.mark.cluster]

SCRIPTS = Path(__file__).resolve().parents[1] / "runs" / "scripts"
IDLE_TIMEOUT_MIN = 0.25
POINTS = 80
"""Counted every half second: 40 s, a 30 s outage of the tracking server in the middle."""
OUTAGE_S = 30


@pytest.fixture(scope="module")
def lab(network: Network, server: dict, client_dir: Path) -> Iterator[dict]:
    """The client's workspace, tracking to the server, with an ``ssh`` target ``lab``: head
    host a, worker hosts b and c, 0 to 2 worker nodes."""
    ws = ssh_workspace(
        network, server, client_dir / "lab", "lab", ["b", "c"], "--min-nodes", "0",
        "--idle-timeout", str(IDLE_TIMEOUT_MIN),
    )  # fmt: skip
    try:
        yield {"ws": ws}
    finally:
        rlfleet(network["client"], "cluster", "down", "lab", cwd=ws, timeout=300)


def test_the_seed_s_workflow_on_three_hosts_outlives_its_client(network, server, lab):
    """A run of the head and two worker nodes: ``rlfleet submit`` starts Ray on a (the
    autoscaler brings b and c up for the run), the client is killed while it follows the run,
    the tracking server is down for 30 s while the run logs, and a new client on another host
    sees the run COMPLETED and whole; Ray is stopped on every host afterwards (the cluster was
    started for the run)."""
    client, a, b, c = (network[h] for h in ("client", "a", "b", "c"))
    ws = lab["ws"]
    spec = ws / "run.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "source_directory": str(SCRIPTS),
                "entry_script": "on_every_node.py",
                "script_params": {"--points": POINTS},
                "compute_target": "lab",
                "worker_configuration": {"compute_target": "lab", "node_count": 2},
                "cluster_coordination_timeout_seconds": 180,
            }
        )
    )
    env = {k: v for k, v in host_env().items() if not k.startswith("RAY_AUTH")}
    follower = client.popen(
        [sys.executable, "-m", "rlfleet.cli.main", "submit", str(spec), "--wait"],
        cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    while not (found := re.search(r"submitted run (\w+)", lines[-1] if lines else "")):
        lines.append(follower.stdout.readline())
        assert lines[-1], "".join(lines)
    run_id = found.group(1)
    store = server["ws"].tracking.client  # the server's own store, read here
    deadline = time.monotonic() + 240
    while "count" not in store.get_run(run_id).data.metrics:
        assert time.monotonic() < deadline and follower.poll() is None, "".join(lines)
        time.sleep(0.5)
    follower.kill()  # the laptop closes
    follower.wait()
    logged_before = len(store.get_metric_history(run_id, "count"))
    server["stop"]()  # the tracking server is down for 30 s while the run logs
    stopped = time.monotonic()

    # A host without the cluster's token can neither submit nor read: 401 without, 403 with a
    # wrong one (Ray's token authentication on the cluster rlfleet started).
    probe = (
        "import sys, urllib.request as u\n"
        "r = u.Request(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]} "
        "if sys.argv[2] else {})\n"
        "try:\n    u.urlopen(r, timeout=10); print(200)\n"
        "except u.HTTPError as e:\n    print(e.code)\n"
    )
    jobs = f"http://{a.address}:8265/api/jobs/"
    for token, code in (("", "401"), ("0" * 64, "403")):
        answer = c.run([sys.executable, "-c", probe, jobs, token], capture_output=True)
        assert answer.stdout.strip() == code, (token, answer.stdout, answer.stderr[-500:])

    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    server["start"]()
    assert logged_before < POINTS // 2  # most points were logged during or after the outage

    c.path("/tmp/password").write_text(server["password_file"].read_text())
    made = rlfleet(
        c, "init", "/tmp/ws", "--tracking-uri", server["url"], "--tracking-username", "rlfleet",
        "--tracking-password-file", "/tmp/password", cwd=Path("/tmp"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    other = Path("/tmp/ws")
    waited = rlfleet(c, "runs", "wait", run_id, "--timeout", "240", cwd=other, timeout=300)
    shown = json.loads(rlfleet(c, "runs", "show", run_id, "--json", cwd=other).stdout)
    assert waited.returncode == 0 and shown["status"] == "COMPLETED", (waited.stderr, shown)
    assert shown["metrics"]["nodes"] == 3

    def points(name: str) -> list[tuple[int, float]]:
        out = rlfleet(c, "runs", "metrics", run_id, name, "--json", cwd=other).stdout
        return sorted((p["step"], p["value"]) for p in json.loads(out)["points"])

    assert points("count") == [(i, float(i)) for i in range(POINTS)]  # none lost
    assert points("task_index") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    log = rlfleet(c, "runs", "logs", run_id, cwd=other).stdout
    assert re.search(rf"tasks ran on {a.address} {b.address} {c.address}\n", log), log
    assert f"counted {POINTS}" in log
    children = {child["role"]: child for child in shown["children"]}
    assert set(children) == {"head", "worker"}, shown["children"]
    assert children["head"]["logs"] and len(children["worker"]["logs"]) == 2, children

    # The cluster was started for the run: Ray is stopped on every host.
    for host in (a, b, c):
        assert wait_until(lambda h=host: not ray_left(h), timeout=60), (
            f"left on {host.name}: {[p.cmdline() for p in ray_left(host)]}"
        )
    # Nothing of rlfleet listens on the client but the server, on its address.
    listeners = {(s.address, s.port) for s in client.listening() if s.process != "sshd"}
    assert listeners == {(client.address, 5000)}, listeners
