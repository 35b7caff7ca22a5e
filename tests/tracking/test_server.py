"""``rlfleet server``: the workspace's store as an MLflow tracking server with a password, which
it refuses requests without, and a client workspace that keeps the password to itself."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest
import requests
import yaml
from support import cli_in_process, free_port, listening_addresses, run_cli, wait_until

from rlfleet import Workspace


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``rlfleet server`` of a fresh workspace on 127.0.0.1 and a free port."""
    ws = Workspace.init(tmp_path_factory.mktemp("server") / "ws")
    port = free_port()
    log = open(ws.root / "server.log", "w")  # noqa: SIM115 - closed at the end
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlfleet.cli.main", "server", "--port", str(port)],
        cwd=ws.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return proc.poll() is not None

    try:
        assert wait_until(up, timeout=90) and proc.poll() is None, (
            ws.root / "server.log"
        ).read_text()
        yield {"ws": ws, "url": url, "port": port, "proc": proc}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        log.close()
    assert listening_addresses(port) == []  # nothing of it left


def search(url: str, auth: tuple[str, str] | None) -> requests.Response:
    return requests.get(
        f"{url}/api/2.0/mlflow/experiments/search", params={"max_results": 5}, auth=auth, timeout=10
    )


def test_the_server_refuses_requests_without_the_password(server):
    password = (server["ws"].state_dir / "server" / "password").read_text().strip()
    assert search(server["url"], None).status_code == 401
    assert search(server["url"], ("rlfleet", "wrong")).status_code == 401
    assert search(server["url"], ("rlfleet", password)).status_code == 200
    assert listening_addresses(server["port"]) == ["127.0.0.1"]
    root = psutil.Process(server["proc"].pid)
    tree = [root, *root.children(recursive=True)]
    assert all(password not in " ".join(p.cmdline()) for p in tree)
    assert "rlfleet" in (server["ws"].root / "server.log").read_text()
    assert password not in (server["ws"].root / "server.log").read_text()


def test_a_client_workspace_keeps_the_password_to_itself(server, tmp_path):
    """``rlfleet init`` with the server's credentials: the password is kept in ``.rlfleet/``
    (mode 0600), not in ``rlfleet.yaml``; the client reads and writes the server's store.
    (Runs tracked through a server, from another host: tests/multihost/test_ssh_target.py.)"""
    password_file = server["ws"].state_dir / "server" / "password"
    password = password_file.read_text().strip()
    client_root = tmp_path / "client"
    made = run_cli(
        "init", str(client_root), "--tracking-uri", server["url"],
        "--tracking-username", "rlfleet", "--tracking-password-file", str(password_file),
        cwd=tmp_path,
    )  # fmt: skip
    assert made.code == 0, made.err
    assert password not in made.out + made.err
    config = (client_root / "rlfleet.yaml").read_text()
    assert password not in config and yaml.safe_load(config)["tracking_username"] == "rlfleet"
    kept = client_root / ".rlfleet" / "tracking_password"
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    assert kept.read_text() == password

    client = Workspace.from_config(client_root)
    run_id = client.tracking.create_run(client.tracking.experiment("through").experiment_id)
    client.tracking.log_text(run_id, "hello", "hello.txt")  # an artifact, through the server
    assert server["ws"].tracking.client.get_run(run_id).info.run_id == run_id
    assert client.tracking.read_artifact(run_id, "hello.txt") == b"hello"


def test_init_refuses_credentials_without_a_server(tmp_path):
    result = cli_in_process(
        "init", str(tmp_path / "ws"), "--tracking-username", "rlfleet", workspace=tmp_path
    )
    assert result.code == 2 and "--tracking-uri" in result.err
    assert not (tmp_path / "ws" / "rlfleet.yaml").exists()
