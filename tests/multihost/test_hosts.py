"""The multi-host harness itself: hosts have their addresses, names, network, files and sshd;
nothing of theirs reaches beyond the Network; closing a Network leaves nothing behind.

No test here sends a packet from the test process towards a host: the root namespace has a
default route to the real network, so such a packet would leave the machine. What the root
namespace lacks (an address or route on the hosts' subnet) is checked instead.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from multihost.hosts import Host, Network, sweep_stale, unavailable_reason

pytestmark = [pytest.mark.multihost, pytest.mark.xdist_group("multihost")]

ECHO_SERVER = """\
import socket, sys
server = socket.create_server((sys.argv[1], 0))
print(server.getsockname()[1], flush=True)
conn, _ = server.accept()
conn.sendall(conn.recv(100).upper())
"""
CONNECT = """\
import socket, sys
try:
    conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
except OSError as error:
    sys.exit(f"{type(error).__name__}: {error}")
conn.sendall(b"ping from " + socket.gethostname().encode())
print(conn.recv(100).decode())
"""


def python_on(host: Host, script: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return host.popen([sys.executable, "-c", script, *args], text=True, **kwargs)


def out(host: Host, cmd: str) -> str:
    done = host.run(cmd, capture_output=True, check=True)
    return done.stdout.strip()


def wait_gone(pid: int, timeout: float = 5) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``timeout`` seconds."""
    try:
        psutil.Process(pid).wait(timeout=timeout)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


def running_on(host: Host, cmdline: list[str], timeout: float = 5) -> bool:
    """Whether ``cmdline`` runs on ``host`` within ``timeout`` seconds (a Popen returns early)."""
    deadline = time.monotonic() + timeout
    while not [p for p in host.processes() if p.cmdline() == cmdline]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def root_links() -> set[str]:
    """The network interfaces of the test process (the root network namespace)."""
    return set(psutil.net_if_addrs())


def root_addresses() -> list[str]:
    """The IPv4 addresses of the test process (the root network namespace)."""
    return [
        addr.address
        for addrs in psutil.net_if_addrs().values()
        for addr in addrs
        if addr.family == socket.AF_INET
    ]


def test_each_host_has_its_address_and_name(network: Network) -> None:
    for host in network.hosts.values():
        addresses = out(host, "ip -o -4 addr show | awk '{print $2, $4}'").splitlines()
        assert addresses == ["lo 127.0.0.1/8", f"eth0 {host.address}/24"]
        assert out(host, "ip -o -6 addr show | awk '{print $2, $4}'") == "lo ::1/128"
        assert out(host, "hostname") == host.name
    resolved = out(network["client"], "getent hosts " + " ".join(network.hosts)).splitlines()
    assert [line.split() for line in resolved] == [
        [h.address, h.name] for h in network.hosts.values()
    ]


def test_hosts_reach_each_other_by_name(network: Network) -> None:
    server = python_on(network["b"], ECHO_SERVER, network["b"].address, stdout=subprocess.PIPE)
    assert server.stdout
    port = server.stdout.readline().strip()
    client = python_on(network["client"], CONNECT, "b", port, stdout=subprocess.PIPE)
    assert client.communicate(timeout=10)[0].strip() == "PING FROM CLIENT"
    assert server.wait(timeout=10) == 0


def test_a_cut_host_is_out_of_reach_until_reconnected(network: Network) -> None:
    """``cut`` unplugs a host's cable: a connection from another host fails; the host's own
    processes go on; ``reconnect`` brings it back."""
    b = network["b"]
    server = python_on(b, ECHO_SERVER, b.address, stdout=subprocess.PIPE)
    assert server.stdout
    port = server.stdout.readline().strip()
    network.cut("b")
    try:
        failed = python_on(network["client"], CONNECT, "b", port, stderr=subprocess.PIPE)
        error = failed.communicate(timeout=10)[1]
        assert failed.returncode != 0 and ("timed out" in error or "No route" in error), error
        assert server.poll() is None
    finally:
        network.reconnect("b")
    client = python_on(network["client"], CONNECT, "b", port, stdout=subprocess.PIPE)
    assert client.communicate(timeout=10)[0].strip() == "PING FROM CLIENT"
    assert server.wait(timeout=10) == 0


def test_the_test_process_has_no_way_onto_the_network(make_network: Callable[..., Network]) -> None:
    before = root_links()
    net = make_network(["x", "y"])
    assert root_links() == before, "the Network added interfaces to the root namespace"
    assert not [a for a in root_addresses() if ipaddress.ip_address(a) in net.subnet]
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True
    )
    assert str(net.subnet) not in routes.stdout


def test_hosts_reach_nothing_beyond_the_network(network: Network) -> None:
    """Not the test process's loopback services, not its addresses: no route leaves a host."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        client = python_on(network["a"], CONNECT, "127.0.0.1", str(port), stderr=subprocess.PIPE)
        error = client.communicate(timeout=10)[1]
        assert client.returncode != 0 and "ConnectionRefusedError" in error
    routes = out(network["a"], "ip -4 route show").splitlines()
    assert routes == [
        f"{network.subnet} dev eth0 proto kernel scope link src {network['a'].address}"
    ]
    for address in [a for a in root_addresses() if not a.startswith("127.")]:
        refused = network["a"].run(["ip", "route", "get", address], capture_output=True)
        assert refused.returncode != 0 and "unreachable" in refused.stderr


def test_a_local_dir_is_seen_by_its_host_only(network: Network, client_dir: Path) -> None:
    name = f"made-on-client-{uuid.uuid4().hex[:8]}"
    network["client"].run(["touch", str(client_dir / name)], check=True)
    assert (client_dir / name).exists()  # the real folder, as the test process sees it
    assert name in out(network["client"], f"ls {client_dir}")
    assert out(network["b"], f"ls -A {client_dir}") == ""
    network["b"].run(["touch", str(client_dir / "made-on-b")], check=True)
    assert not (client_dir / "made-on-b").exists()


def test_tmp_and_home_are_each_hosts_own(network: Network) -> None:
    name = f"rlfleet-multihost-{uuid.uuid4().hex[:8]}"
    a, b = network["a"], network["b"]
    a.run(["touch", f"/tmp/{name}", f"/dev/shm/{name}", f"/root/{name}"], check=True)
    assert out(a, f"ls /tmp/{name} /dev/shm/{name} /root/{name} | wc -l") == "3"
    assert out(b, f"ls /tmp/{name} /dev/shm/{name} /root/{name} 2>/dev/null | wc -l") == "0"
    for folder in ("/tmp", "/dev/shm", "/root"):
        assert not Path(folder, name).exists(), f"{folder} of host a is the test process's"
    assert a.path(f"/tmp/{name}").exists()  # how the test process looks inside a host


def test_processes_are_seen_on_their_host_only(network: Network) -> None:
    """``ray stop`` on one host must not see another host's Ray: each has its own PIDs."""
    a, b = network["a"], network["b"]
    sleeper = a.popen(["sleep", "971"])
    try:
        assert running_on(a, ["sleep", "971"])
        assert a.run(["pgrep", "-f", "sleep 971"], capture_output=True).returncode == 0
        assert b.run(["pgrep", "-f", "sleep 971"], capture_output=True).returncode == 1
        assert not [p for p in b.processes() if p.name() == "sleep"]
    finally:
        sleeper.terminate()
    assert sleeper.wait(timeout=5) == -signal.SIGTERM  # the signal reached the command
    assert not [p for p in a.processes() if p.name() == "sleep"]


def test_commands_get_their_environment_directory_and_exit_status(network: Network) -> None:
    done = network["c"].run(
        'echo "$GREETING $(pwd)"; exit 7',
        cwd="/work",
        env={"GREETING": "hello", "PATH": os.environ["PATH"]},
        capture_output=True,
    )
    assert (done.returncode, done.stdout) == (7, "hello /work\n")


def test_ssh_runs_commands_inside_the_target_host(network: Network) -> None:
    b = network["b"]
    b.path("/tmp/only-on-b").write_text("b's own /tmp\n")
    done = network["client"].ssh_to(
        b,
        "hostname; ip -o -4 addr show eth0 | awk '{print $4}'; cat /tmp/only-on-b",
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["b", f"{b.address}/24", "b's own /tmp"]


def test_ssh_with_another_key_is_refused(network: Network) -> None:
    client, b = network["client"], network["b"]
    client.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/tmp/not-the-key"], check=True
    )
    try:
        done = client.ssh_to(b, "true", key="/tmp/not-the-key", capture_output=True)
        assert done.returncode == 255
        assert "Permission denied (publickey)" in done.stderr  # no password login offered
    finally:
        client.run("rm -f /tmp/not-the-key /tmp/not-the-key.pub", check=True)


def test_sshd_listens_on_the_host_address_only(network: Network) -> None:
    for host in network.hosts.values():
        listening = host.listening()
        assert [(s.address, s.port, s.process) for s in listening] == [(host.address, 22, "sshd")]
        assert listening[0].pid in {p.pid for p in host.processes()}


def test_close_leaves_nothing(make_network: Callable[..., Network], tmp_path: Path) -> None:
    links_before = root_links()
    docs = Path(__file__).parents[2] / "docs"  # shared with the hosts, unless hidden
    net = make_network(["x", "y"], ssh=True, local_dirs={"x": [tmp_path]}, hidden=[docs])
    assert out(net["y"], f"ls -A {docs}") == ""
    command = net["x"].popen(["sleep", "972"])
    assert running_on(net["x"], ["sleep", "972"])
    procs = [
        p for host in net.hosts.values() for p in [psutil.Process(host.pid), *host.processes()]
    ]
    assert {p.name() for p in procs} >= {"sshd", "sleep"}
    private_run = net["x"].path("/run")
    assert private_run.joinpath("sshd.pid").exists()
    net.close()
    assert command.wait(timeout=5) < 0
    assert not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert net.prefix not in listed.stdout
    assert root_links() == links_before
    assert not private_run.exists()  # the hosts' files were in their private mounts, gone now
    assert not [name for name in os.listdir("/tmp") if net.prefix in name]
    net.close()  # twice is fine


MAKE_AND_SLEEP = """\
import time
from multihost.hosts import Network
net = Network(["x"]).start()
print(net.prefix, net["x"].pid, flush=True)
time.sleep(60)
"""


def test_a_killed_test_process_leaves_nothing_after_the_next_sweep() -> None:
    """The hosts die with the process that made them; their namespaces go at the next start."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    owner = subprocess.Popen(
        [sys.executable, "-c", MAKE_AND_SLEEP], stdout=subprocess.PIPE, env=env
    )
    assert owner.stdout
    prefix, init = owner.stdout.readline().decode().split()
    owner.kill()
    owner.wait(timeout=5)
    assert wait_gone(int(init)), "the host's init outlived the process that made it"
    sweep_stale()  # the namespace files stay until then (or until another run's sweep)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    assert not [name for name in listed if name == prefix or name.startswith(f"{prefix}-")]
