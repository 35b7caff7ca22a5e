"""Fixtures for multi-host tests: Networks of hosts made of Linux namespaces (see hosts.py).

Where this machine cannot make them (not root, no ``ip``, no sshd, namespaces refused), the tests
that use these fixtures skip, saying why.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from multihost.hosts import Host, Network, Unavailable, host_env

from rlfleet import Workspace

SERVER_PORT = 5000
VENV_BIN = Path(sys.executable).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "multihost: runs on hosts made of Linux namespaces (root; skips without)"
    )


def start_network(hosts: list[str], **options: Any) -> Network:
    """A started :class:`Network`, or a skip saying why this machine cannot make one."""
    try:
        return Network(hosts, **options).start()
    except Unavailable as reason:
        pytest.skip(str(reason))


@pytest.fixture(scope="module", autouse=True)
def _one_module_at_a_time() -> Iterator[None]:
    """One module of these tests at a time on the machine (scripts/test runs two test
    processes): their hosts run whole Ray clusters, and two at once on 2 cores would time out."""
    import fcntl

    with open("/tmp/rlfleet-multihost-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def client_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder only the ``client`` host of ``network`` sees (and the test process)."""
    return tmp_path_factory.mktemp("client")


@pytest.fixture(scope="session")
def network(client_dir: Path) -> Iterator[Network]:
    """Hosts ``a``, ``b``, ``c``, ``d`` and ``client``, each with an sshd; ``client_dir`` is
    the client's own folder. One for the session (a Network and its sshds take seconds to
    start): tests and modules leave the hosts as they found them."""
    net = start_network(
        ["a", "b", "c", "d", "client"], local_dirs={"client": [client_dir]}, ssh=True
    )
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def make_network() -> Iterator[Callable[..., Network]]:
    """``make_network(hosts, **options)`` starts a Network of one's own; all closed at teardown
    (closing one earlier is fine)."""
    made: list[Network] = []

    def make(hosts: list[str], **options: Any) -> Network:
        made.append(start_network(hosts, **options))
        return made[-1]

    yield make
    errors = []
    for net in made:
        try:
            net.close()
        except RuntimeError as error:
            errors.append(error)
    if errors:
        raise errors[0]


def ssh_workspace(
    network: Network, server: dict, folder: Path, target: str, workers: list[str], *options: str
) -> Path:
    """A client workspace in ``folder`` tracking to ``server``, with an ``ssh`` target named
    ``target``: head host ``a``, ``workers`` as its worker hosts (``options``: more flags of
    ``compute create``). Every host has Ray and rlfleet on the PATH of a login shell (Ray's
    launcher runs ``bash --login``), as a user's hosts would."""
    for host in ["a", *workers]:
        network[host].path("/root/.bashrc").write_text(f"export PATH={VENV_BIN}:$PATH\n")
    client = network["client"]
    made = rlfleet(
        client, "init", str(folder), "--tracking-uri", server["url"], "--tracking-username",
        "rlfleet", "--tracking-password-file", str(server["password_file"]), cwd=folder.parent,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    hosts = ",".join(network[h].address for h in workers)
    created = rlfleet(
        client, "compute", "create", target, "--kind", "ssh", "--head-host", network["a"].address,
        "--hosts", hosts, "--ssh-user", network.ssh_user, "--ssh-key", network.ssh_key_path,
        *options, cwd=folder,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    return folder


def ray_left(host: Host) -> list:
    """Processes of Ray (or of runs) on ``host``: anything but its sshd."""
    left = []
    for proc in host.processes():
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            if proc.name() != "sshd":
                left.append(proc)
    return left


def rlfleet(host: Host, *args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """``rlfleet ARGS`` on ``host`` (no Ray settings of the test process's)."""
    env = {k: v for k, v in host_env().items() if not k.startswith("RAY_AUTH")}
    return host.run(
        [sys.executable, "-m", "rlfleet.cli.main", *args],
        cwd=cwd, env=env, capture_output=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="session")
def server(network: Network, client_dir: Path) -> Iterator[dict]:
    """``rlfleet server`` of a workspace on the client host, on the client's address; its
    ``stop()`` and ``start()`` take it down and up again (an outage of the store; a test that
    stops it starts it again)."""
    client = network["client"]
    ws = Workspace.init(client_dir / "server")
    log = open(client_dir / "server.log", "a")  # noqa: SIM115 - closed at the end
    url = f"http://{client.address}:{SERVER_PORT}"
    procs: list[subprocess.Popen] = []

    def start() -> None:
        command = [
            sys.executable, "-m", "rlfleet.cli.main", "server", "--host", client.address,
            "--port", str(SERVER_PORT),
        ]  # fmt: skip
        procs.append(client.popen(command, cwd=ws.root, stdout=log, stderr=subprocess.STDOUT))
        probe = f"import urllib.request as u; u.urlopen('{url}/health', timeout=2)"
        deadline = time.monotonic() + 90
        while client.run([sys.executable, "-c", probe], capture_output=True).returncode != 0:
            assert procs[-1].poll() is None and time.monotonic() < deadline, (
                client_dir / "server.log"
            ).read_text()
            time.sleep(0.5)

    def stop() -> None:
        if procs and procs[-1].poll() is None:
            procs[-1].send_signal(signal.SIGTERM)
            assert procs[-1].wait(timeout=30) == 0

    start()
    try:
        yield {
            "ws": ws,
            "url": url,
            "password_file": ws.state_dir / "server" / "password",
            "start": start,
            "stop": stop,
        }
    finally:
        stop()
        log.close()
