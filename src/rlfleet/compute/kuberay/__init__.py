"""A run spec as a KubeRay ``RayJob`` manifest, checked against KubeRay's own schema.

rlfleet does not talk to Kubernetes: it writes the manifest (``rlfleet kube rayjob``) and
``kubectl apply`` hands it to the KubeRay operator, which starts a Ray cluster, runs the entry
script on it as a Ray job and deletes the cluster afterwards. What rlfleet puts in:

* the node shapes of the run's compute targets: the head target becomes ``headGroupSpec``, the
  worker target one ``workerGroupSpecs`` entry (``replicas`` from the run's ``node_count``,
  ``minReplicas``/``maxReplicas`` from the target's ``min_nodes``/``max_nodes``, KubeRay's
  in-tree autoscaler on); CPUs, GPUs and memory as container requests and limits and as
  ``rayStartParams``; the same Ray node labels and custom resource as rlfleet's local nodes;
* the entry script's command (:meth:`RunSpec.entrypoint`, the one rlfleet submits to Ray's Job
  API) and its runtime env (``working_dir``, ``pip``, ``env_vars``) as ``runtimeEnvYAML``;
* the run's limits: ``preRunningDeadlineSeconds`` from ``cluster_coordination_timeout_seconds``,
  ``activeDeadlineSeconds`` from ``max_run_duration_seconds`` (plus the coordination time, as
  KubeRay counts from the start of the cluster and rlfleet from the start of the entry script);
* credentials by reference only: every container reads the tracking URI, the tracking
  credentials and the Ray auth token from a Secret (``valueFrom.secretKeyRef``); the manifest
  never holds a secret value, and nothing here reads one.

**The source folder.** A Kubernetes pod cannot see a folder on this machine, so ``working_dir``
must be a URI: by default ``local:///home/ray/app``, a folder baked into the image (Ray 2.60
uses it in place on every node), or a remote zip of the folder (``s3://``, ``gs://``,
``https://``...) that Ray downloads on every node. A plain path is refused.

**Ray's token authentication.** The Ray containers run with ``RAY_AUTH_MODE=token`` and
``RAY_AUTH_TOKEN`` from the Secret. ``authOptions`` names the same Secret, so that KubeRay gives
the token to the containers it adds (autoscaler, job submitter) and uses it itself to follow the
job; KubeRay reads the token under the key ``auth_token``, so that is the Secret's key for it.

:func:`manifest_errors` checks a manifest against the ``openAPIV3Schema`` of KubeRay's RayJob CRD
(vendored, see ``NOTICE``) with ``jsonschema``, plus the name rules KubeRay's webhook applies;
Kubernetes' ``x-kubernetes-*`` extensions (CEL rules, list types) are not checked. The manifest
needs KubeRay 1.6.0 or later (``authOptions.secretName``, ``preRunningDeadlineSeconds``).
"""

from __future__ import annotations

import copy
import json
import math
import re
import sys
from collections.abc import Iterable
from functools import cache
from importlib import metadata, resources
from typing import Any
from urllib.parse import urlparse

import yaml

from rlfleet.compute.target import ComputeTarget
from rlfleet.errors import RlfleetError, RunSpecError
from rlfleet.runs.spec import ResolvedSpec
from rlfleet.telemetry import telemetry_env

API_VERSION = "ray.io/v1"
KIND = "RayJob"
KUBERAY_RELEASE = "v1.7.0"
"""The KubeRay release whose RayJob schema is vendored (``rayjob_v1_schema.json``)."""
SCHEMA_FILE = "rayjob_v1_schema.json"

DEFAULT_SECRET = "rlfleet-credentials"
IMAGE_SOURCE_DIR = "/home/ray/app"
"""Where the default ``working_dir`` expects the run's source folder in the image."""
DEFAULT_WORKING_DIR = f"local://{IMAGE_SOURCE_DIR}"
DEFAULT_TTL_SECONDS = 600
"""How long KubeRay keeps the finished cluster (to read its logs) before deleting it."""
MAX_NAME_LENGTH = 47
"""KubeRay's limit for a RayJob name (its RayCluster's limit, 53, less a suffix)."""

# The Secret's keys. ``auth_token`` is KubeRay's (authOptions.secretName needs that key).
TRACKING_URI_KEY = "tracking-uri"
TRACKING_TOKEN_KEY = "tracking-token"
TRACKING_USERNAME_KEY = "tracking-username"
TRACKING_PASSWORD_KEY = "tracking-password"
RAY_AUTH_TOKEN_KEY = "auth_token"

# Ray 2.60's token authentication (ray/_private/authentication/authentication_token_setup.py).
RAY_AUTH_MODE_ENV = "RAY_AUTH_MODE"
RAY_AUTH_TOKEN_ENV = "RAY_AUTH_TOKEN"

# Ray's remote protocols for a zipped working_dir (ray/_private/runtime_env/protocol.py).
_REMOTE_SCHEMES = ("http", "https", "s3", "gs", "azure", "abfss", "file")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_1123_SUBDOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


class ManifestError(RlfleetError):
    """A RayJob manifest that KubeRay would refuse."""


# -- building ------------------------------------------------------------------------------------


def rayjob_manifest(
    resolved: ResolvedSpec,
    *,
    name: str,
    image: str | None = None,
    secret: str = DEFAULT_SECRET,
    namespace: str | None = None,
    working_dir: str = DEFAULT_WORKING_DIR,
    ttl_seconds_after_finished: int = DEFAULT_TTL_SECONDS,
) -> dict[str, Any]:
    """The KubeRay ``RayJob`` that runs ``resolved`` on Kubernetes (not yet validated).

    Args:
        resolved: the run spec, checked against a workspace (its targets give the node shapes).
        name: the RayJob's name (a DNS-1035 label of at most 47 characters).
        image: the image of every Ray container; default :func:`default_image`.
        secret: the Secret that holds the tracking URI and credentials and the Ray token.
        namespace: the RayJob's namespace; ``None`` leaves it to ``kubectl``.
        working_dir: ``local:///PATH`` (the source folder baked into the image) or the URI of
            a remote zip of it.
        ttl_seconds_after_finished: how long the finished cluster is kept.

    Returns:
        The manifest as plain data; see :func:`validate_manifest` and :func:`manifest_yaml`.

    Raises:
        RunSpecError: ``working_dir`` is no URI a pod can reach.
    """
    spec = resolved.spec
    worker = spec.worker_configuration
    head_gpus = resolved.head.gpus if spec.use_gpu else 0
    worker_gpus = resolved.workers.gpus if resolved.workers and worker and worker.use_gpu else 0
    image = image or default_image(gpu=bool(head_gpus or worker_gpus))
    env = credential_env(secret)
    object_store = spec.shm_bytes

    cluster: dict[str, Any] = {
        "rayVersion": ray_version(),
        "enableInTreeAutoscaling": True,
        "authOptions": {"mode": "token", "secretName": secret},
        "headGroupSpec": {
            "rayStartParams": _ray_start_params(resolved.head, head_gpus, object_store),
            "labels": _node_labels(resolved.head, "head"),
            "template": _pod_template(
                "ray-head", image, env, resolved.head, head_gpus, ports=_HEAD_PORTS
            ),
        },
    }
    if resolved.workers is not None and worker is not None:
        target = resolved.workers
        cluster["workerGroupSpecs"] = [
            {
                "groupName": _dns_label(target.name),
                "replicas": min(max(worker.node_count, target.min_nodes), target.max_nodes),
                "minReplicas": target.min_nodes,
                "maxReplicas": target.max_nodes,
                "rayStartParams": _ray_start_params(target, worker_gpus, object_store),
                "labels": _node_labels(target, "worker"),
                "template": _pod_template("ray-worker", image, env, target, worker_gpus),
            }
        ]

    job: dict[str, Any] = {
        "entrypoint": spec.entrypoint(),
        "runtimeEnvYAML": yaml.safe_dump(
            runtime_env(resolved, working_dir), sort_keys=False, width=1000
        ),
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": ttl_seconds_after_finished,
        "preRunningDeadlineSeconds": math.ceil(spec.cluster_coordination_timeout_seconds),
    }
    if spec.max_run_duration_seconds is not None:
        job["activeDeadlineSeconds"] = math.ceil(
            spec.max_run_duration_seconds + spec.cluster_coordination_timeout_seconds
        )
    job["rayClusterSpec"] = cluster

    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {"app.kubernetes.io/created-by": "rlfleet"}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": job}


def runtime_env(resolved: ResolvedSpec, working_dir: str = DEFAULT_WORKING_DIR) -> dict[str, Any]:
    """The Ray runtime env of the job, as rlfleet's supervisor builds it for Ray's Job API, with
    ``working_dir`` a URI (see :func:`check_working_dir`) and no tracking settings in
    ``env_vars`` (the containers read those from the Secret)."""
    spec = resolved.spec
    env: dict[str, Any] = {
        "working_dir": check_working_dir(working_dir),
        "env_vars": {**spec.environment_variables, "PYTHONUNBUFFERED": "1", **telemetry_env()},
    }
    packages = spec.all_pip_packages()
    if packages:
        env["pip"] = {"packages": packages, "pip_check": False}
    return env


def check_working_dir(uri: str) -> str:
    """``uri`` if a Ray node in a pod can reach it: ``local:///ABSOLUTE/PATH`` (a folder in the
    image) or a remote zip (``s3://``, ``gs://``, ``https://``...); else a RunSpecError."""
    parsed = urlparse(uri)
    if parsed.scheme == "local" and uri.startswith("local:///"):
        return uri
    if parsed.scheme in _REMOTE_SCHEMES and parsed.path.lower().endswith(".zip"):
        return uri
    raise RunSpecError(
        f"working_dir {uri!r} cannot reach a Kubernetes pod; bake the source folder into the "
        f"image and give local:///PATH (default {DEFAULT_WORKING_DIR}), or give the URI of a "
        "zip of it (s3://, gs://, https://...)."
    )


def credential_env(secret: str) -> list[dict[str, Any]]:
    """The containers' environment variables: Ray's token authentication and MLflow's tracking
    URI and credentials, each value read from ``secret``. The tracking URI and the Ray token
    must be there; the tracking token, user name and password are optional."""
    return [
        {"name": RAY_AUTH_MODE_ENV, "value": "token"},
        _from_secret(RAY_AUTH_TOKEN_ENV, secret, RAY_AUTH_TOKEN_KEY),
        # Run.get_context() outside an rlfleet-submitted run logs to MLflow's tracking URI.
        _from_secret("MLFLOW_TRACKING_URI", secret, TRACKING_URI_KEY),
        _from_secret("MLFLOW_TRACKING_TOKEN", secret, TRACKING_TOKEN_KEY, optional=True),
        _from_secret("MLFLOW_TRACKING_USERNAME", secret, TRACKING_USERNAME_KEY, optional=True),
        _from_secret("MLFLOW_TRACKING_PASSWORD", secret, TRACKING_PASSWORD_KEY, optional=True),
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        *({"name": key, "value": value} for key, value in telemetry_env().items()),
    ]


def ray_version() -> str:
    """The installed Ray's version, which the cluster's image should match."""
    return metadata.version("ray")


def default_image(*, gpu: bool = False) -> str:
    """Ray's image for this Ray and Python version (``rayproject/ray:2.60.0-py311``), its CUDA
    variant (``-gpu``) when a node group offers GPUs."""
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    return f"rayproject/ray:{ray_version()}-{python}{'-gpu' if gpu else ''}"


def rayjob_name(text: str) -> str:
    """A RayJob name made from ``text`` (e.g. a spec file's name): lower case, letters, digits
    and '-', starting with a letter, at most 47 characters."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not name[:1].isalpha():
        name = f"rlfleet-{name}".rstrip("-")
    return name[:MAX_NAME_LENGTH].rstrip("-")


_HEAD_PORTS = [
    {"name": "gcs-server", "containerPort": 6379},
    {"name": "dashboard", "containerPort": 8265},
    {"name": "client", "containerPort": 10001},
]


def _from_secret(env: str, secret: str, key: str, *, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": env, "valueFrom": {"secretKeyRef": ref}}


def _ray_start_params(
    target: ComputeTarget, gpus: int, object_store_bytes: int | None
) -> dict[str, str]:
    """``ray start`` flags of a group, as rlfleet starts its local nodes: the target's CPUs,
    the GPUs the run uses, and the target's custom resource (one unit per CPU). KubeRay passes
    the ``resources`` value to a shell, hence its quoting."""
    params = {
        "num-cpus": str(target.cpus),
        "num-gpus": str(gpus),
        "resources": '"' + json.dumps({target.name: target.cpus}).replace('"', '\\"') + '"',
    }
    if object_store_bytes:
        params["object-store-memory"] = str(object_store_bytes)
    return params


def _node_labels(target: ComputeTarget, role: str) -> dict[str, str]:
    """Ray node labels (KubeRay also puts them on the pods): role and target, as local nodes."""
    return {"rlfleet/role": role, "rlfleet/compute": target.name}


def _pod_template(
    container_name: str,
    image: str,
    env: list[dict[str, Any]],
    target: ComputeTarget,
    gpus: int,
    *,
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    amounts: dict[str, str] = {"cpu": str(target.cpus)}
    if target.memory_gb is not None:
        amounts["memory"] = _quantity_gib(target.memory_gb)
    if gpus:
        amounts["nvidia.com/gpu"] = str(gpus)
    container: dict[str, Any] = {
        "name": container_name,
        "image": image,
        "env": copy.deepcopy(env),
        "resources": {"requests": dict(amounts), "limits": dict(amounts)},
    }
    if ports:
        container["ports"] = [dict(port) for port in ports]
    return {"spec": {"containers": [container]}}


def _quantity_gib(gib: float) -> str:
    """A Kubernetes memory quantity: whole GiB as ``8Gi``, anything else in whole MiB."""
    if float(gib).is_integer():
        return f"{int(gib)}Gi"
    return f"{math.ceil(gib * 1024)}Mi"


def _dns_label(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", name.lower())


# -- checking ------------------------------------------------------------------------------------


@cache
def rayjob_schema() -> dict[str, Any]:
    """The ``openAPIV3Schema`` of KubeRay's ``RayJob`` (``ray.io/v1``), vendored from
    :data:`KUBERAY_RELEASE`."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text())


@cache
def _validator() -> Any:
    from jsonschema import Draft7Validator, FormatChecker

    # Only the formats Kubernetes checks on integers; unknown keys (``nullable``,
    # ``x-kubernetes-*``) are ignored by jsonschema, ``int-or-string`` fields are ``anyOf``.
    formats = FormatChecker(formats=())
    for fmt, (low, high) in (("int32", _INT32), ("int64", _INT64)):
        formats.checks(fmt)(_in_range(low, high))
    return Draft7Validator(rayjob_schema(), format_checker=formats)


def _in_range(low: int, high: int) -> Any:
    def check(value: Any) -> bool:
        return not isinstance(value, int) or low <= value <= high

    return check


def manifest_errors(manifest: Any) -> list[str]:
    """What KubeRay would refuse in ``manifest``, one ``path: problem`` line each; empty if it
    fits the vendored RayJob schema and KubeRay's name rules."""
    if not isinstance(manifest, dict):
        return ["the manifest is not a mapping"]
    problems: list[str] = []
    if manifest.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: must be {API_VERSION!r}, not {manifest.get('apiVersion')!r}")
    if manifest.get("kind") != KIND:
        problems.append(f"kind: must be {KIND!r}, not {manifest.get('kind')!r}")
    meta = manifest.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not _DNS_1035.match(name) or len(name) > MAX_NAME_LENGTH:
        problems.append(
            f"metadata.name: {name!r} must be at most {MAX_NAME_LENGTH} lower-case letters, "
            "digits and '-', starting with a letter and not ending with '-'"
        )
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    if namespace is not None and not _DNS_1123_LABEL.match(str(namespace)):
        problems.append(f"metadata.namespace: {namespace!r} is not a Kubernetes namespace name")
    secret = _lookup(manifest, "spec", "rayClusterSpec", "authOptions", "secretName")
    if isinstance(secret, str) and not _DNS_1123_SUBDOMAIN.match(secret):
        problems.append(
            f"spec.rayClusterSpec.authOptions.secretName: {secret!r} is not a Secret name "
            "(lower-case letters, digits, '-' and '.')"
        )
    errors = sorted(_validator().iter_errors(manifest), key=lambda e: _path(e.absolute_path))
    problems.extend(f"{_path(e.absolute_path) or '(top)'}: {e.message:.200}" for e in errors)
    return problems


def validate_manifest(manifest: Any) -> None:
    """Raise a one-line :class:`ManifestError` naming the first problem of ``manifest`` (see
    :func:`manifest_errors`); return quietly if there is none."""
    problems = manifest_errors(manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ManifestError(
            f"the RayJob manifest does not fit KubeRay {KUBERAY_RELEASE}'s schema: "
            f"{problems[0]}{more}."
        )


def _lookup(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


# -- writing -------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (``runtimeEnvYAML``) as ``|`` blocks, and repeated values in
    full (no YAML anchors, which some Kubernetes tools do not follow)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def manifest_yaml(manifest: dict[str, Any], *, source: str | None = None) -> str:
    """``manifest`` as a YAML document for ``kubectl apply -f``, with a header that says where
    it comes from and which Secret it needs."""
    secret = manifest["spec"]["rayClusterSpec"].get("authOptions", {}).get("secretName")
    header = [
        f"# KubeRay RayJob written by rlfleet{f' from {source}' if source else ''},",
        f"# checked against the RayJob schema of KubeRay {KUBERAY_RELEASE}. It needs the Secret",
        f"# {secret!r} with the keys {TRACKING_URI_KEY} and {RAY_AUTH_TOKEN_KEY} (optional: "
        f"{TRACKING_TOKEN_KEY},",
        f"# {TRACKING_USERNAME_KEY}, {TRACKING_PASSWORD_KEY}); see rlfleet's docs/kubernetes.md.",
    ]
    body = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, width=4096)
    return "\n".join(header) + "\n" + body


__all__ = [
    "API_VERSION",
    "DEFAULT_SECRET",
    "DEFAULT_WORKING_DIR",
    "KIND",
    "KUBERAY_RELEASE",
    "ManifestError",
    "check_working_dir",
    "credential_env",
    "default_image",
    "manifest_errors",
    "manifest_yaml",
    "rayjob_manifest",
    "rayjob_name",
    "rayjob_schema",
    "runtime_env",
    "validate_manifest",
]
