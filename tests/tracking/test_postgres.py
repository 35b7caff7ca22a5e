"""PostgreSQL as the tracking store: a real server in a throwaway cluster, runs logged through
rlfleet (a local run and a submitted one, through the tracker actor), read back with the CLI,
and the password never printed."""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import cli_in_process, write_spec

PASSWORD = "pw-" + secrets.token_hex(8)


def _pg_bindir() -> Path | None:
    """Where initdb and pg_ctl are (Debian keeps them out of PATH, in /usr/lib/postgresql)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(versions[-1]).parent if versions else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def _install_postgres() -> None:
    """Debian's packages, as scripts/test does; only as root with apt-get."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "postgresql"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 (a free port) in a temporary folder, with a database
    ``rlfleet`` owned by user ``rlfleet`` (password authentication); yields its URI."""
    bindir = _pg_bindir()
    if bindir is None:
        _install_postgres()
        bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed and cannot be (needs root and apt-get)")
    pytest.importorskip("psycopg2", reason="psycopg2-binary (the test extra) is not installed")
    import psycopg2

    root = Path(tempfile.mkdtemp(prefix="rlfleet-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as 'postgres'
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    superuser_password = secrets.token_hex(8)
    pwfile = root / "pwfile"
    pwfile.write_text(superuser_password)
    if as_user:
        shutil.chown(pwfile, "postgres", "postgres")

    def pg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)

    init = pg(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
              f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8")  # fmt: skip
    assert init.returncode == 0, init.stderr
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    start = pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options,
               "-w", "-t", "60", "start")  # fmt: skip
    assert start.returncode == 0, start.stdout + start.stderr + _read(root / "log")
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres",
                                 password=superuser_password, dbname="postgres")  # fmt: skip
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE ROLE rlfleet LOGIN PASSWORD '{PASSWORD}'")
            cursor.execute("CREATE DATABASE rlfleet OWNER rlfleet")
        admin.close()
        yield f"postgresql://rlfleet:{PASSWORD}@127.0.0.1:{port}/rlfleet"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _cli(*args: str, root: Path, outputs: list[str]) -> str:
    result = cli_in_process(*args, workspace=root)
    outputs += [result.out, result.err]
    assert result.code == 0, result.err
    return result.out


# A local run: Run.get_context() in a script in the workspace folder, straight into the store.
LOCAL_RUN = """
from rlfleet import Run
run = Run.get_context()
for i in range(50):
    run.log("reward", i * 2.0)
print(run.id)
"""


@pytest.mark.cluster
def test_runs_tracked_in_postgresql(postgres, tmp_path):
    outputs: list[str] = []
    root = tmp_path / "ws"
    init = _cli("init", str(root), "--tracking-uri", postgres, root=root, outputs=outputs)
    assert "tracking store: postgresql://rlfleet:***@127.0.0.1:" in init
    _cli("compute", "create", "head", "--cpus", "1", root=root, outputs=outputs)

    local = subprocess.Popen(
        [sys.executable, "-c", LOCAL_RUN], cwd=root, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # A submitted run: the driver and Ray tasks log through the tracker actor on the head node.
    spec = write_spec(tmp_path / "many.yaml", entry_script="many_points.py")
    run_id = json.loads(_cli("submit", str(spec), "--json", root=root, outputs=outputs))["id"]
    local_out, local_err = local.communicate(timeout=120)
    outputs += [local_out, local_err]
    assert local.returncode == 0, local_err
    local_id = local_out.strip()
    wait = cli_in_process("runs", "wait", run_id, "--timeout", "240", workspace=root)
    outputs += [wait.out, wait.err]
    assert wait.code == 0, _cli("runs", "show", run_id, root=root, outputs=outputs)

    listed = json.loads(_cli("runs", "list", "--json", root=root, outputs=outputs))
    assert {r["id"]: r["status"] for r in listed} == {local_id: "COMPLETED", run_id: "COMPLETED"}
    shown = json.loads(_cli("runs", "show", run_id, "--json", root=root, outputs=outputs))
    assert shown["metrics"]["driver_value"] == 1999 * 0.5
    assert [c["role"] for c in shown["children"]] == ["head"]
    assert "driver_log.txt" in shown["children"][0]["logs"]

    def points(run: str, name: str) -> list[tuple[int, float]]:
        out = _cli("runs", "metrics", run, name, "--json", root=root, outputs=outputs)
        return [(p["step"], p["value"]) for p in json.loads(out)["points"]]

    assert points(run_id, "driver_value") == [(i, i * 0.5) for i in range(2000)]
    assert points(run_id, "task_2") == [(i, float(i)) for i in range(500)]
    assert points(local_id, "reward") == [(i, i * 2.0) for i in range(50)]
    assert "COMPLETED" in _cli("runs", "show", run_id, root=root, outputs=outputs)
    assert local_id in _cli("runs", "list", root=root, outputs=outputs)
    assert "sent 3500" in _cli("runs", "logs", run_id, root=root, outputs=outputs)

    # Artifacts of a database store stay in the workspace, not in some process's ./mlruns.
    assert list((root / ".rlfleet" / "artifacts").rglob("driver_log.txt"))
    assert not (root / "mlruns").exists() and not (tmp_path / "mlruns").exists()
    leaked = [text for text in outputs if PASSWORD in text]
    assert not leaked, leaked[0][:2000]
