"""Hosts for multi-host tests, made of Linux namespaces on this one machine.

A :class:`Network` is a small LAN of :class:`Host` s: a Ray head on host ``a``, workers on ``b``
and ``c``, a client on ``client``, Ray's cluster launcher reaching them over ssh. It needs root.

The LAN
    A bridge in a network namespace of its own (the "switch"); each host is a network namespace
    with ``lo`` and an ``eth0`` (a veth to the bridge) holding its address, .1, .2, ... of the
    subnet, and no IPv6 on it. There is no default route and no interface in the root namespace:
    hosts reach each other and nothing else, and the test process cannot reach them either — it
    acts *on* hosts (:meth:`Host.run`), never talks to them over the network. Interface names live
    inside those namespaces and the subnets never meet, so Networks cannot clash; only namespace
    names (``rlf<pid>n<k>-<host>``) are machine-wide, and they carry the creator's pid so that a
    later run can remove what a killed one left (:func:`sweep_stale`).
A host's own view of the machine
    Each host has an init process (``python hosts.py init``, started by ``unshare`` inside the
    host's network namespace): PID 1 of a PID namespace, owner of a mount and a UTS namespace. In
    them: private tmpfs on /run, /tmp and /dev/shm (so /tmp/ray and the object store are the
    host's own), a copy-on-write home (overlayfs on /root: what ``ray up`` writes to ``~`` stays
    on the host), sysfs of its own network, an /etc/hosts naming every host, the hostname set to
    the host's name. /work and the rest of the filesystem are shared, so the same venv and Ray run
    everywhere. A folder can belong to one host (``local_dirs``): that host sees the real folder,
    the others an empty one at the same path. The PID namespace is there because ``ray stop``
    (and ``ray down``, which runs it over ssh) kills every Ray process it can see: with the
    machine's PIDs it would stop the other hosts' Ray and other tests' clusters.
Running something on a host
    ``python hosts.py enter`` joins the host's namespaces and forks the command into its PID
    namespace, forwarding signals and the exit status, so the Popen a test holds behaves like the
    command itself (``nsenter --pid`` forwards no signal). The command gets the environment it is
    given; it starts in ``/`` unless given ``cwd``.
ssh
    :meth:`Network.start_sshd` runs one sshd per host, in the host's namespaces, listening on the
    host's address only and accepting one key pair made for the Network. Every file (keys,
    config, log) is in the hosts' private /run; ``~/.ssh`` is never used.
Teardown
    :meth:`Network.close` stops everything in the hosts' network namespaces (the kernel kills a
    PID namespace with its init), then deletes the namespaces, which takes the bridge and the
    veths with them. The private mounts vanish with their namespaces; nothing is written outside.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

# psutil is imported where it is used: this file is also the hosts' init and the wrapper of every
# command run on a host, which start faster without it.

HOSTS_PY = Path(__file__).resolve()
NS_PREFIX = "rlf"
PRIVATE_DIRS = {"/run": "755", "/tmp": "1777", "/dev/shm": "1777"}
"""Empty and private on every host (tmpfs, with these modes)."""
HOST_DIR = "/run/rlfleet"
"""The harness's files on a host (keys, sshd config and log): private, root only."""
SSHD = "/usr/sbin/sshd"
SSH_USER = "root"
SSH_KEY = f"{HOST_DIR}/id_ed25519"
"""The Network's client key, on every host."""
HOST_ENV_DROPPED = ("RAY_ADDRESS", "RLFLEET_WORKSPACE")
"""Left out of the default environment of host commands: they name the test process's own
cluster or workspace."""
TOOLS = {"ip": "iproute2", "ss": "iproute2", "nsenter": "util-linux", "unshare": "util-linux"}
TOOLS["sysctl"] = "procps"
SSH_TOOLS = {"ssh": "openssh-client", "ssh-keygen": "openssh-client"}
"""Commands the harness runs, and the Debian packages they come in."""
_networks = itertools.count()


class Unavailable(RuntimeError):
    """This machine cannot make hosts; the message says why."""


# --- inside a host: the init and the entering of commands (stdlib only; run as a script) ---

_libc = ctypes.CDLL(None, use_errno=True)
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC = 0x2, 0x4, 0x8, 0x1000, 0x4000
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """mount(2); a source ``/proc/self/fd/N`` binds the folder open on N, even if hidden since."""
    args = (source.encode(), target.encode(), fstype.encode() if fstype else None, flags)
    if _libc.mount(*args, data.encode() or None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def _drop_namespace_files() -> None:
    """Unmount this mount namespace's copies of ``ip netns``'s files: hidden under the private
    /run they would still keep other Networks' namespaces alive as long as this host."""
    with open("/proc/self/mountinfo") as mountinfo:
        targets = [line.split()[4] for line in mountinfo if " - nsfs " in line]
    for target in reversed(targets):
        if _libc.umount2(target.encode(), MNT_DETACH) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"umount {target}: {os.strerror(errno)}")


def _setns(fd: int) -> None:
    if _libc.setns(fd, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def init_host(spec: Mapping[str, Any]) -> NoReturn:
    """PID 1 of a host: set up its view of the machine (see the module docstring), say "ready"
    on stdout, then reap the orphans that come to it (``ray start`` daemonizes) until killed."""
    shared = [os.open(path, os.O_RDONLY | os.O_DIRECTORY) for path in spec["shared"]]
    own = [os.open(path, os.O_RDONLY | os.O_DIRECTORY) for path in spec["local_dirs"]]
    cgroup = os.open("/sys/fs/cgroup", os.O_RDONLY | os.O_DIRECTORY)  # sysfs covers it next
    _drop_namespace_files()
    for path, mode in PRIVATE_DIRS.items():
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode}")
    for path, mode in [(HOST_DIR, 0o700), ("/run/sshd", 0o755), ("/run/home/upper", 0o755)]:
        os.makedirs(path, mode=mode)
    os.makedirs("/run/home/work")
    home = spec["home"]
    options = f"lowerdir={home},upperdir=/run/home/upper,workdir=/run/home/work"
    _mount("overlay", home, "overlay", 0, options)
    _mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # of this host's network
    _mount(f"/proc/self/fd/{cgroup}", "/sys/fs/cgroup", None, MS_BIND | MS_REC)
    for path, fd in zip(spec["shared"], shared, strict=True):  # before hiding what is in them
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    for path in spec["hidden"]:
        os.makedirs(path, exist_ok=True)
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    for path, fd in zip(spec["local_dirs"], own, strict=True):
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    Path(HOST_DIR, "hosts").write_text(spec["etc_hosts"])
    _mount(f"{HOST_DIR}/hosts", "/etc/hosts", None, MS_BIND)
    socket.sethostname(spec["name"])
    for fd in [*shared, *own, cgroup]:
        os.close(fd)
    print("ready", flush=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            time.sleep(0.5)


NAMESPACES = ("pid", "net", "uts", "mnt")
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)


def enter_host(init_pid: int, cwd: str, argv: Sequence[str]) -> NoReturn:
    """Run ``argv`` on the host whose init is ``init_pid``; exit as it exits. Signals sent to
    this process reach the command; if this process is killed, so is the command."""
    try:  # net, uts, mnt: the order they are joined in (mnt last)
        fds = {ns: os.open(f"/proc/{init_pid}/ns/{ns}", os.O_RDONLY) for ns in NAMESPACES}
    except FileNotFoundError:
        sys.exit(f"hosts.py enter: no host has init PID {init_pid} (closed already?)")
    _setns(fds.pop("pid"))  # for the child forked next: a process never changes its own
    child = os.fork()
    if child == 0:
        try:
            for fd in fds.values():  # mnt resets the root and the working directory
                _setns(fd)
            os.chdir(cwd)
            _die_with_parent()
            if os.getppid() != 0:  # the parent, outside this PID namespace, is gone already
                os._exit(137)
            os.execvp(argv[0], list(argv))
        except OSError as error:
            print(f"hosts.py enter: {argv[0]}: {error}", file=sys.stderr, flush=True)
            os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


# --- the test process's side ---


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket on a host."""

    address: str
    """As ``ss`` shows it: ``10.231.7.2``, ``0.0.0.0``, ``::``, ``*``."""
    port: int
    pid: int | None
    """In the machine's PID numbering (as psutil sees it)."""
    process: str | None


class Host:
    """One host of a :class:`Network`: run commands on it, look at its processes and sockets."""

    def __init__(self, network: Network, name: str, address: str, netns: str) -> None:
        self.network = network
        self.name = name
        self.address = address
        """Its IPv4 address on the Network."""
        self.netns = netns
        """Its network namespace (``ip netns``)."""
        self.local_dirs: list[Path] = []
        """Folders only this host sees (the others see an empty folder there)."""
        self.pid = 0
        """Its init (the holder of its namespaces), in the machine's PID numbering."""
        self._holder: subprocess.Popen[str] | None = None
        self._sshd: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.address}, pid={self.pid})"

    # commands

    def command(self, cmd: str | Sequence[str], *, cwd: str | Path = "/") -> list[str]:
        """The command line that runs ``cmd`` (argv, or a string for ``sh -c``) on this host."""
        if not self.pid:
            raise RuntimeError(f"host {self.name} is not running")
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else [str(arg) for arg in cmd]
        enter = [sys.executable, str(HOSTS_PY), "enter", str(self.pid), str(cwd), "--"]
        return [*enter, *argv]

    def run(
        self,
        cmd: str | Sequence[str],
        *,
        cwd: str | Path = "/",
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[Any]:
        """:func:`subprocess.run` on this host (``cmd``: argv, or a string run by ``sh -c``).

        The environment is ``env``, or :func:`host_env` without it; text output by default."""
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(cmd, cwd=cwd), env=_env(env), **kwargs)

    def popen(
        self,
        cmd: str | Sequence[str],
        *,
        cwd: str | Path = "/",
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> subprocess.Popen[Any]:
        """:class:`subprocess.Popen` on this host, like :meth:`run`; signals reach ``cmd``."""
        return subprocess.Popen(self.command(cmd, cwd=cwd), env=_env(env), **kwargs)

    def path(self, path: str | Path) -> Path:
        """Where the test process finds this host's ``path`` (its /tmp, /run, ... included)."""
        return Path(f"/proc/{self.pid}/root") / str(path).lstrip("/")

    # what runs on it

    def processes(self) -> list[Any]:
        """The live psutil processes on this host (in its network namespace), its init aside."""
        holders = {self.pid, self._holder.pid if self._holder else 0}
        inside = _processes_in([_netns_inode_of(self.netns)])
        return [proc for proc in inside if proc.pid not in holders]

    def listening(self) -> list[Listener]:
        """The TCP sockets listening on this host (``ss -tlnp`` in its network namespace)."""
        out = subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.netns}", "--", "ss", "-Htlnp"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [_parse_ss_line(line) for line in out.splitlines() if line.strip()]

    # ssh

    def ssh_command(self, target: Host, *, key: str = SSH_KEY) -> list[str]:
        """``ssh`` from this host to ``target``, without a remote command (append it)."""
        options = [
            "-F", "/dev/null",
            "-i", key,
            "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=5",
        ]  # fmt: skip
        return ["ssh", *options, f"{SSH_USER}@{target.address}"]

    def ssh_to(
        self, target: Host, cmd: str, *, key: str = SSH_KEY, **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``cmd`` on ``target`` through ssh from this host (:meth:`run` ``kwargs``)."""
        return self.run([*self.ssh_command(target, key=key), cmd], **kwargs)

    # the Network's part

    def _start(self, spec: Mapping[str, Any]) -> None:
        unshare = ["unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child"]
        unshare += ["--mount-proc", "--propagation", "private"]
        init = [sys.executable, str(HOSTS_PY), "init", json.dumps(spec)]
        self._holder = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "--", *unshare, "--", *init],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,  # if the test process is killed, the host goes too
        )

    def _wait_started(self) -> None:
        import psutil

        assert self._holder and self._holder.stdout and self._holder.stderr
        if self._holder.stdout.readline().strip() != "ready":
            self._holder.kill()
            error = self._holder.stderr.read().strip().splitlines()
            raise RuntimeError(f"host {self.name} did not start: {error[-1:] or 'no output'}")
        self._holder.stdout.close()
        self._holder.stderr.close()
        self.pid = psutil.Process(self._holder.pid).children()[0].pid

    def _start_sshd(self, client_key: bytes, client_pub: bytes) -> None:
        files = {
            "id_ed25519": client_key,
            "id_ed25519.pub": client_pub,
            "authorized_keys": client_pub,
            "sshd_config": _sshd_config(self).encode(),
        }
        for name, content in files.items():
            target = self.path(f"{HOST_DIR}/{name}")
            target.write_bytes(content)
            target.chmod(0o600)
        host_key = f"{HOST_DIR}/ssh_host_ed25519_key"
        if not self.path(host_key).exists():
            keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key]
            self.run(keygen, check=True, capture_output=True)
        log = f"{HOST_DIR}/sshd.log"
        self._sshd = self.popen(
            f"exec {SSHD} -D -e -f {HOST_DIR}/sshd_config 2>>{log}",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )

    def _wait_sshd(self, timeout: float = 10) -> None:
        assert self._sshd
        log = self.path(f"{HOST_DIR}/sshd.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._sshd.poll() is None:
            if log.exists() and "Server listening on" in log.read_text():
                return
            time.sleep(0.02)
        tail = log.read_text().strip().splitlines()[-3:] if log.exists() else []
        raise RuntimeError(f"sshd on host {self.name} did not start: {tail}")


class Network:
    """A LAN of hosts on this machine; a context manager (or :meth:`start` / :meth:`close`).

    ``hosts``: their names (lowercase letters and digits), given addresses .1, .2, ... in that
    order. ``subnet``: an IPv4 /24 or larger (default ``10.231.X.0/24``, X random: subnets of
    different Networks never meet, a varying one just makes mix-ups visible). ``local_dirs``:
    host name -> existing folders only that host sees. ``hidden``: existing folders no host sees
    (each sees an empty folder there; not the repository or the venv: hosts run from them).
    ``ssh``: start an sshd on every host.

    Example (``ray``/``python`` by absolute path: an ssh session's PATH is the system's)::

        with Network(["a", "b", "client"], local_dirs={"client": [ws]}, ssh=True) as net:
            net["a"].run([RAY, "start", "--head", "--port=6379"], check=True)
            net["b"].run([RAY, "start", "--address=a:6379"], check=True)
            net["client"].run([PYTHON, "-m", "rlfleet.cli.main", ...], cwd=ws, check=True)
            net["client"].ssh_to(net["b"], f"{RAY} stop", check=True)
    """

    def __init__(
        self,
        hosts: Iterable[str],
        *,
        subnet: str | None = None,
        local_dirs: Mapping[str, Iterable[str | Path]] | None = None,
        hidden: Iterable[str | Path] = (),
        ssh: bool = False,
    ) -> None:
        names = list(hosts)
        for name in names:
            if not re.fullmatch(r"[a-z][a-z0-9]{0,19}", name):
                raise ValueError(f"host name {name!r}: use lowercase letters and digits")
        self.subnet = ipaddress.IPv4Network(subnet or f"10.231.{_random_octet()}.0/24")
        if len(names) != len(set(names)) or len(names) > self.subnet.num_addresses - 2:
            raise ValueError(f"hosts {names}: need distinct names that fit in {self.subnet}")
        self.prefix = f"{NS_PREFIX}{os.getpid()}n{next(_networks)}"
        """Of the namespaces' names; the switch's is just this."""
        addresses = list(self.subnet.hosts())
        self.hosts = {
            name: Host(self, name, str(addresses[i]), f"{self.prefix}-{name}")
            for i, name in enumerate(names)
        }
        self.hidden = [_existing_dir(path) for path in hidden]
        for name, paths in (local_dirs or {}).items():
            self.hosts[name].local_dirs = [_existing_dir(path) for path in paths]
        needed = [HOSTS_PY, Path(sys.prefix), Path(sys.executable).resolve()]
        for path in [*self.hidden, *(p for h in self.hosts.values() for p in h.local_dirs)]:
            if any(file.is_relative_to(path) for file in needed):
                raise ValueError(f"{path}: hosts run from it ({', '.join(map(str, needed))})")
        self.ssh = ssh
        self.ssh_user = SSH_USER
        self.ssh_key_path = SSH_KEY
        """The private key that every host's sshd accepts: a path on the hosts (not here)."""
        self._namespaces: list[str] = []

    def __enter__(self) -> Network:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def start(self) -> Network:
        """Make the LAN and the hosts (and their sshd); on any failure, remove what was made."""
        reason = unavailable_reason(sshd=self.ssh)
        if reason:
            raise Unavailable(reason)
        sweep_stale()
        try:
            self._make_lan()
            for host in self.hosts.values():
                host._start(self._init_spec(host))
            for host in self.hosts.values():
                host._wait_started()
            if self.ssh:
                self.start_sshd()
        except BaseException:
            self.close()
            raise
        return self

    def start_sshd(self) -> None:
        """Start an sshd on every host (see the module docstring) and wait until they listen."""
        first = next(iter(self.hosts.values()))
        if not first.path(SSH_KEY).exists():
            keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.prefix]
            first.run([*keygen, "-f", SSH_KEY], check=True, capture_output=True)
        key, pub = first.path(SSH_KEY).read_bytes(), first.path(f"{SSH_KEY}.pub").read_bytes()
        for host in self.hosts.values():
            host._start_sshd(key, pub)
        for host in self.hosts.values():
            host._wait_sshd()
        self.ssh = True

    def cut(self, name: str) -> None:
        """Unplug host ``name``'s cable: its port on the switch goes down (packets to and from it
        are dropped; what runs on it goes on, alone)."""
        _ip("-n", self.prefix, "link", "set", self._port(name), "down")

    def reconnect(self, name: str) -> None:
        """Plug host ``name``'s cable back in."""
        _ip("-n", self.prefix, "link", "set", self._port(name), "up")

    def _port(self, name: str) -> str:
        return f"p{list(self.hosts).index(name)}"

    def close(self, grace: float = 2) -> None:
        """Stop everything on the hosts and remove the namespaces; safe to call twice.

        SIGTERM to what runs on the hosts, SIGKILL after ``grace`` seconds; then the inits go
        (and with them whatever was left in their PID namespaces)."""
        inodes = [_netns_inode_of(ns) for ns in self._namespaces]
        try:
            self._stop_hosts(inodes, grace)
        finally:
            for ns in reversed(self._namespaces):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            self._namespaces.clear()
        left = _processes_in(inodes)
        if left:
            raise RuntimeError(f"processes outlived the hosts' teardown: {left}")

    def _stop_hosts(self, inodes: list[int | None], grace: float) -> None:
        holders = {p for h in self.hosts.values() for p in (h.pid, h._holder and h._holder.pid)}
        _signal_all(
            [p for p in _processes_in(inodes) if p.pid not in holders], signal.SIGTERM, grace
        )
        for host in self.hosts.values():
            if host._holder is not None:
                host._holder.kill()  # unshare: its child, the init, gets SIGKILL too
                host._holder.wait(timeout=10)
        _signal_all(_processes_in(inodes), signal.SIGKILL, wait=5)
        for host in self.hosts.values():
            if host._sshd is not None:
                host._sshd.wait(timeout=10)
            host._sshd = host._holder = None
            host.pid = 0

    def _make_lan(self) -> None:
        switch = self.prefix
        self._add_netns(switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for host in self.hosts.values():
            port = self._port(host.name)
            self._add_netns(host.netns)
            _ip("-n", switch, "link", "add", port, "type", "veth", "peer", "eth0", "netns", host.netns)  # fmt: skip
            _ip("-n", switch, "link", "set", port, "master", "br0", "up")
            _ip("-n", host.netns, "addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")  # fmt: skip
            _ip("-n", host.netns, "link", "set", "eth0", "up")
            _ip("-n", host.netns, "link", "set", "lo", "up")

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        # interfaces made from now on get no IPv6 (no link-local addresses beyond the plan)
        sysctl = ["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"]
        subprocess.run(["nsenter", f"--net=/run/netns/{name}", "--", *sysctl], check=True)

    def _init_spec(self, host: Host) -> dict[str, Any]:
        others = [p for h in self.hosts.values() if h is not host for p in h.local_dirs]
        etc_hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        etc_hosts += "".join(f"{h.address}\t{h.name}\n" for h in self.hosts.values())
        return {
            "name": host.name,
            "home": pwd.getpwuid(0).pw_dir,  # root's, as sshd sees it
            "hidden": [str(p) for p in [*self.hidden, *others]],
            "shared": [str(p) for p in shared_dirs()],
            "local_dirs": [str(p) for p in host.local_dirs],
            "etc_hosts": etc_hosts,
        }


def shared_dirs() -> list[Path]:
    """The repository and the venv where a host's private folders would hide them (a checkout
    under /tmp, as a CI's may be): bound back on every host, so that hosts run the same code."""
    repository = HOSTS_PY.parents[2]
    private = [Path(path) for path in PRIVATE_DIRS]
    return [
        path
        for path in dict.fromkeys([repository, Path(sys.prefix)])
        if any(path.is_relative_to(folder) for folder in private)
    ]


def host_env() -> dict[str, str]:
    """The default environment of host commands: this process's, without ``HOST_ENV_DROPPED``."""
    return {k: v for k, v in os.environ.items() if k not in HOST_ENV_DROPPED}


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return host_env() if env is None else env


def unavailable_reason(*, sshd: bool = False) -> str | None:
    """Why this machine cannot make a :class:`Network` (with sshd), or None if it can."""
    if os.geteuid() != 0:
        return "multi-host tests need root (network and mount namespaces)"
    tools = {**TOOLS, **(SSH_TOOLS if sshd else {})}
    missing = [f"{tool} ({package})" for tool, package in tools.items() if not shutil.which(tool)]
    if missing:
        return f"multi-host tests need {', '.join(missing)}"
    if sshd and not os.access(SSHD, os.X_OK):
        return f"multi-host tests need {SSHD} (Debian: openssh-server; scripts/test installs it)"
    probe = f"{NS_PREFIX}{os.getpid()}probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make network namespaces: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    unshare = ["unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc", "true"]
    made = subprocess.run(unshare, capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make mount/PID namespaces: {made.stderr.strip()}"
    return None


def sweep_stale() -> None:
    """Remove the namespaces (and what runs in them) of Networks whose process is gone."""
    import psutil

    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = [line.split()[0] for line in listed.splitlines() if line.strip()]
    stale = [
        name
        for name in names
        if (match := re.fullmatch(rf"{NS_PREFIX}(\d+)n\d+(-[a-z0-9]+)?", name))
        and not psutil.pid_exists(int(match[1]))
    ]
    _signal_all(_processes_in(map(_netns_inode_of, stale)), signal.SIGKILL, wait=5)
    for name in sorted(stale, reverse=True):  # hosts before their switch
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _processes_in(netns_inodes: Iterable[int | None]) -> list[Any]:
    """The live psutil processes in these network namespaces."""
    import psutil

    inodes = {inode for inode in netns_inodes if inode is not None}
    found = []
    for proc in psutil.process_iter(["status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and _netns_inode(proc.pid) in inodes:
            found.append(proc)
    return found


def _signal_all(procs: Iterable[Any], signum: int, wait: float) -> None:
    import psutil

    procs = list(procs)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signum)
    psutil.wait_procs(procs, timeout=wait)


def _netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _netns_inode_of(name: str) -> int | None:
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _random_octet() -> int:
    return int.from_bytes(os.urandom(1)) % 254 + 1


def _existing_dir(path: str | Path) -> Path:
    resolved = Path(path).resolve()
    if not resolved.is_dir():
        raise ValueError(f"{path}: not an existing folder")
    return resolved


def _sshd_config(host: Host) -> str:
    return f"""\
# Written by tests/multihost/hosts.py: the sshd of host {host.name}, run in its namespaces.
ListenAddress {host.address}:22
HostKey {HOST_DIR}/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile {HOST_DIR}/authorized_keys
PermitRootLogin prohibit-password
AllowUsers {SSH_USER}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
X11Forwarding no
PrintMotd no
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""


_SS_PROCESS = re.compile(r'users:\(\("(?P<name>[^"]+)",pid=(?P<pid>\d+)')


def _parse_ss_line(line: str) -> Listener:
    """``LISTEN 0 128 10.231.7.2:22 0.0.0.0:* users:(("sshd",pid=12,fd=3))`` -> a Listener."""
    fields = line.split()
    address, _, port = fields[3].rpartition(":")
    address = address.strip("[]").split("%")[0]
    process = _SS_PROCESS.search(line)
    return Listener(
        address=address,
        port=int(port),
        pid=int(process["pid"]) if process else None,
        process=process["name"] if process else None,
    )


def main(argv: Sequence[str]) -> NoReturn:
    """``hosts.py init SPEC_JSON`` | ``hosts.py enter INIT_PID CWD -- ARGV...``"""
    if argv[:1] == ["init"]:
        init_host(json.loads(argv[1]))
    if argv[:1] == ["enter"] and argv[3:4] == ["--"] and len(argv) > 4:
        enter_host(int(argv[1]), argv[2], argv[4:])
    sys.exit(f"usage: {main.__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
