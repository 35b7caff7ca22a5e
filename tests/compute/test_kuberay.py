"""KubeRay RayJob manifests: built from a run spec and its targets, checked against the vendored
RayJob schema of KubeRay, credentials only by reference, and the ``rlfleet kube rayjob`` CLI."""

from __future__ import annotations

import copy
import json
import shlex
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest
import yaml
from support import cli_in_process

from rlfleet import ComputeTarget, RunSpec, WorkerConfiguration, Workspace
from rlfleet.compute import kuberay
from rlfleet.errors import RunSpecError

PONG_SPEC = Path(__file__).resolve().parents[2] / "examples" / "pong_rllib" / "pong.yaml"
SECRET_ENV = ("RAY_AUTH_TOKEN", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN")
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0"}
"""rlfleet's telemetry settings (src/rlfleet/telemetry.py): off, in this test process too."""


@pytest.fixture
def pong_workspace(workspace):
    """The workspace with the targets pong.yaml names (its comment says how to create them),
    the worker target with a floor of one node."""
    workspace.compute.create(ComputeTarget("head-cpu", cpus=1))
    workspace.compute.create(ComputeTarget("worker-cpu", cpus=1, min_nodes=1, max_nodes=4))
    return workspace


@pytest.fixture
def pong_manifest(pong_workspace):
    resolved = RunSpec.from_yaml(PONG_SPEC).resolve(pong_workspace)
    return kuberay.rayjob_manifest(resolved, name="pong")


def containers(manifest):
    cluster = manifest["spec"]["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]
    return [c for group in groups for c in group["template"]["spec"]["containers"]]


def test_vendored_schema_is_kuberays_rayjob():
    from jsonschema import Draft7Validator

    schema = kuberay.rayjob_schema()
    Draft7Validator.check_schema(schema)
    assert {"apiVersion", "kind", "metadata", "spec", "status"} <= set(schema["properties"])
    assert (
        "headGroupSpec"
        in schema["properties"]["spec"]["properties"]["rayClusterSpec"]["properties"]
    )
    notice = resources.files("rlfleet.compute.kuberay").joinpath("NOTICE").read_text()
    assert kuberay.KUBERAY_RELEASE in notice
    assert "ray-operator/config/crd/bases/ray.io_rayjobs.yaml" in notice
    assert "Apache License, Version 2.0" in notice


def test_seed_pong_spec_gives_a_valid_rayjob(pong_manifest):
    assert kuberay.manifest_errors(pong_manifest) == []
    kuberay.validate_manifest(pong_manifest)
    # What kubectl gets is the same manifest, and it is valid too.
    text = kuberay.manifest_yaml(pong_manifest, source="pong.yaml")
    assert yaml.safe_load(text) == pong_manifest
    assert text.startswith("# KubeRay RayJob written by rlfleet from pong.yaml")

    spec = RunSpec.from_yaml(PONG_SPEC)
    job = pong_manifest["spec"]
    assert (pong_manifest["apiVersion"], pong_manifest["kind"]) == ("ray.io/v1", "RayJob")
    assert job["entrypoint"] == spec.entrypoint()
    assert job["entrypoint"].startswith("python pong_rllib.py --run IMPALA")
    assert job["shutdownAfterJobFinishes"] is True
    assert job["ttlSecondsAfterFinished"] == kuberay.DEFAULT_TTL_SECONDS
    # KubeRay counts from the start of the cluster, rlfleet from the start of the entry script.
    assert job["activeDeadlineSeconds"] == 3900 + 600
    assert job["preRunningDeadlineSeconds"] == 600
    assert yaml.safe_load(job["runtimeEnvYAML"]) == {
        "working_dir": "local:///home/ray/app",
        "env_vars": {"PYTHONUNBUFFERED": "1", **QUIET},
    }
    cluster = job["rayClusterSpec"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["rayVersion"] == metadata.version("ray")
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert {c["image"] for c in containers(pong_manifest)} == {
        f"rayproject/ray:{metadata.version('ray')}-{python}"
    }
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "1"
    assert head["labels"] == {"rlfleet/role": "head", "rlfleet/compute": "head-cpu"}


def test_worker_group_follows_the_target(pong_manifest):
    (group,) = pong_manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert group["groupName"] == "worker-cpu"
    assert (group["minReplicas"], group["maxReplicas"]) == (1, 4)  # the target's min/max nodes
    assert group["replicas"] == 2  # the spec's node_count
    assert group["rayStartParams"]["num-cpus"] == "1"
    assert group["rayStartParams"]["num-gpus"] == "0"
    assert group["labels"]["rlfleet/role"] == "worker"


def test_node_shapes_become_container_resources(workspace, tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    workspace.compute.create(ComputeTarget("gpu-head", cpus=4, gpus=1, memory_gb=16))
    workspace.compute.create(
        ComputeTarget("big", cpus=8, gpus=2, memory_gb=30.5, min_nodes=0, max_nodes=3)
    )
    spec = RunSpec(
        source_directory=str(tmp_path),
        entry_script="train.py",
        compute_target="gpu-head",
        use_gpu=True,
        worker_configuration=WorkerConfiguration(compute_target="big", node_count=3),
        pip_packages=["gymnasium"],
        environment_variables={"MODE": "fast"},
        shm_size="2g",
    )
    manifest = kuberay.rayjob_manifest(
        spec.resolve(workspace), name="gpu", working_dir="s3://bucket/src.zip"
    )
    assert kuberay.manifest_errors(manifest) == []
    cluster = manifest["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    (worker,) = cluster["workerGroupSpecs"]
    head_box, worker_box = (c["resources"] for c in containers(manifest))
    assert head_box["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert head_box["requests"] == head_box["limits"]
    assert head["rayStartParams"]["num-gpus"] == "1"
    # The workers' GPUs are not used (no worker use_gpu): none asked of Kubernetes or offered.
    assert worker_box["limits"] == {"cpu": "8", "memory": "31232Mi"}
    assert worker["rayStartParams"]["num-cpus"] == "8"
    assert worker["rayStartParams"]["num-gpus"] == "0"
    assert head["rayStartParams"]["object-store-memory"] == str(2 * 1024**3)  # shm_size
    # KubeRay hands the value to a shell: what `ray start --resources` then gets is JSON.
    (resources_arg,) = shlex.split(worker["rayStartParams"]["resources"])
    assert json.loads(resources_arg) == {"big": 8}
    assert (worker["replicas"], worker["minReplicas"], worker["maxReplicas"]) == (3, 0, 3)
    assert all(c["image"].endswith("-gpu") for c in containers(manifest))
    assert yaml.safe_load(manifest["spec"]["runtimeEnvYAML"]) == {
        "working_dir": "s3://bucket/src.zip",
        "env_vars": {"MODE": "fast", "PYTHONUNBUFFERED": "1", **QUIET},
        "pip": {"packages": ["gymnasium"], "pip_check": False},
    }
    assert "activeDeadlineSeconds" not in manifest["spec"]  # no max_run_duration_seconds


def test_head_only_spec(workspace, tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    spec = RunSpec(source_directory=str(tmp_path), entry_script="train.py", compute_target="head")
    manifest = kuberay.rayjob_manifest(spec.resolve(workspace), name="solo", image="me/rl:1")
    assert kuberay.manifest_errors(manifest) == []
    assert "workerGroupSpecs" not in manifest["spec"]["rayClusterSpec"]
    assert [c["image"] for c in containers(manifest)] == ["me/rl:1"]


def test_missing_head_group_is_named(pong_manifest):
    broken = copy.deepcopy(pong_manifest)
    del broken["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert kuberay.manifest_errors(broken) == [
        "spec.rayClusterSpec: 'headGroupSpec' is a required property"
    ]
    with pytest.raises(kuberay.ManifestError, match="'headGroupSpec' is a required property"):
        kuberay.validate_manifest(broken)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("rayClusterSpec", "workerGroupSpecs", 0, "replicas"), "2", "is not of type 'integer'"),
        (("rayClusterSpec", "headGroupSpec", "rayStartParams", "num-cpus"), 1, "not of type"),
        (("shutdownAfterJobFinishes",), "yes", "is not of type 'boolean'"),
        (("activeDeadlineSeconds",), 2**31, "is not a 'int32'"),
    ],
)
def test_wrong_types_fail(pong_manifest, path, value, message):
    broken = copy.deepcopy(pong_manifest)
    parent = broken["spec"]
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    (problem,) = kuberay.manifest_errors(broken)
    where = "spec." + ".".join(str(p) for p in path).replace(".0.", "[0].")
    assert problem.startswith(f"{where}: "), problem
    assert message in problem


@pytest.mark.parametrize("name", ["Pong", "2pong", "pong_run", "p" * 48, "pong-"])
def test_names_kuberay_refuses(pong_manifest, name):
    pong_manifest["metadata"]["name"] = name
    (problem,) = kuberay.manifest_errors(pong_manifest)
    assert problem.startswith("metadata.name: ")
    pong_manifest["metadata"]["name"] = kuberay.rayjob_name(name)
    assert kuberay.manifest_errors(pong_manifest) == []


def test_no_secret_value_in_the_manifest(tmp_path, monkeypatch):
    tracking_uri = "postgresql://rl:db-password-1234@db.internal:5432/rl"
    ws = Workspace.init(tmp_path / "ws", tracking_uri=tracking_uri)
    ws.compute.create(ComputeTarget("head-cpu", cpus=1))
    ws.compute.create(ComputeTarget("worker-cpu", cpus=1, max_nodes=4))
    ray_token = ws.ray_token_path.read_text().strip()
    assert len(ray_token) >= 32
    for var in SECRET_ENV:
        monkeypatch.setenv(var, f"leaked-{var.lower()}-value")
    manifest = kuberay.rayjob_manifest(
        RunSpec.from_yaml(PONG_SPEC).resolve(ws), name="pong", secret="my-creds"
    )
    text = kuberay.manifest_yaml(manifest)
    for secret in (ray_token, "leaked-", "db-password-1234", "db.internal"):
        assert secret not in text
    assert manifest["spec"]["rayClusterSpec"]["authOptions"] == {
        "mode": "token",
        "secretName": "my-creds",
    }
    wanted = {
        "RAY_AUTH_TOKEN": "auth_token",
        "MLFLOW_TRACKING_URI": "tracking-uri",
        "MLFLOW_TRACKING_TOKEN": "tracking-token",
    }
    assert len(containers(manifest)) == 2
    for container in containers(manifest):
        env = {item["name"]: item for item in container["env"]}
        assert env["RAY_AUTH_MODE"] == {"name": "RAY_AUTH_MODE", "value": "token"}
        for var, value in QUIET.items():  # nothing sent out from the pods either
            assert env[var] == {"name": var, "value": value}
        for var, key in wanted.items():
            assert "value" not in env[var]
            ref = env[var]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == ("my-creds", key)


@pytest.mark.parametrize("uri", ["/home/me/files", "files", "s3://bucket/src", "local://rel"])
def test_working_dir_must_reach_the_pods(pong_workspace, uri):
    resolved = RunSpec.from_yaml(PONG_SPEC).resolve(pong_workspace)
    with pytest.raises(RunSpecError, match="cannot reach a Kubernetes pod"):
        kuberay.rayjob_manifest(resolved, name="pong", working_dir=uri)


def test_cli_writes_a_valid_manifest(pong_workspace, tmp_path):
    out = tmp_path / "pong-rayjob.yaml"
    result = cli_in_process(
        "kube", "rayjob", str(PONG_SPEC), "--namespace", "rl", "-o", str(out),
        workspace=pong_workspace.root,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "kubectl apply -f" in result.out
    manifest = yaml.safe_load(out.read_text())
    assert kuberay.manifest_errors(manifest) == []
    assert manifest["metadata"]["name"] == "pong"
    assert manifest["metadata"]["namespace"] == "rl"
    assert manifest["spec"]["rayClusterSpec"]["authOptions"]["secretName"] == (
        "rlfleet-credentials"
    )


def test_cli_prints_to_stdout(pong_workspace):
    result = cli_in_process(
        "kube", "rayjob", str(PONG_SPEC), "--image", "me/rl:2", "--name", "seed-pong",
        workspace=pong_workspace.root,
    )  # fmt: skip
    assert result.code == 0, result.err
    manifest = yaml.safe_load(result.out)
    assert manifest["metadata"]["name"] == "seed-pong"
    assert {c["image"] for c in containers(manifest)} == {"me/rl:2"}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["missing.yaml"], "cannot read"),
        ([str(PONG_SPEC), "--working-dir", "/home/me/files"], "cannot reach a Kubernetes pod"),
        ([str(PONG_SPEC), "--name", "Bad_Name"], "metadata.name"),
        ([str(PONG_SPEC), "--secret", "My_Creds"], "authOptions.secretName"),
        ([str(PONG_SPEC), "--namespace", "RL Team"], "metadata.namespace"),
    ],
)
def test_cli_bad_input_is_one_line(pong_workspace, tmp_path, args, fragment):
    out = tmp_path / "rayjob.yaml"
    args = [str(tmp_path / a) if a == "missing.yaml" else a for a in args]
    result = cli_in_process("kube", "rayjob", *args, "-o", str(out), workspace=pong_workspace.root)
    assert_one_line_error(result, fragment)
    assert not out.exists()


def test_cli_unknown_target_is_one_line(workspace, tmp_path):
    out = tmp_path / "rayjob.yaml"
    result = cli_in_process(
        "kube", "rayjob", str(PONG_SPEC), "-o", str(out), workspace=workspace.root
    )
    assert_one_line_error(result, "no compute target named 'head-cpu'")
    assert not out.exists()


def assert_one_line_error(result, fragment: str) -> None:
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("rlfleet: error: ") and fragment in lines[0], lines[0]
