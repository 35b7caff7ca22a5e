"""``rlfleet kube rayjob``: a run spec as a KubeRay RayJob manifest, for ``kubectl apply``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rlfleet.cli.common import workspace
from rlfleet.compute import kuberay
from rlfleet.errors import RlfleetError
from rlfleet.runs.spec import RunSpec


def register(commands: argparse._SubParsersAction) -> None:
    kube = commands.add_parser("kube", help="write Kubernetes (KubeRay) manifests for runs")
    sub = kube.add_subparsers(dest="kube_command", metavar="ACTION")
    sub.required = True

    rayjob = sub.add_parser(
        "rayjob",
        help="write the KubeRay RayJob of a run spec, checked against KubeRay's schema",
        description="Write the KubeRay RayJob (ray.io/v1) that runs SPEC on Kubernetes: node "
        "groups from its compute targets, the entry script as the job, credentials from a "
        "Secret. The manifest is checked against the RayJob schema of KubeRay "
        f"{kuberay.KUBERAY_RELEASE} before it is written. See docs/kubernetes.md.",
    )
    rayjob.add_argument("spec", metavar="SPEC.yaml", help="the run spec")
    rayjob.add_argument(
        "--image", help="image of the Ray containers (default: rayproject/ray matching Ray here)"
    )
    rayjob.add_argument(
        "--secret",
        default=kuberay.DEFAULT_SECRET,
        help="Secret with the tracking URI and credentials and the Ray token "
        f"(default {kuberay.DEFAULT_SECRET})",
    )
    rayjob.add_argument("--namespace", help="namespace of the RayJob (default: kubectl's)")
    rayjob.add_argument("--name", help="name of the RayJob (default: from the spec's file name)")
    rayjob.add_argument(
        "--working-dir",
        default=kuberay.DEFAULT_WORKING_DIR,
        metavar="URI",
        help="the source folder as the pods see it: local:///PATH baked into the image "
        f"(default {kuberay.DEFAULT_WORKING_DIR}) or a remote zip (s3://, gs://, https://)",
    )
    rayjob.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    rayjob.set_defaults(handler=_rayjob)


def _rayjob(args: argparse.Namespace) -> int:
    path = Path(args.spec)
    spec = RunSpec.from_yaml(path)
    resolved = spec.resolve(workspace(args))
    name = args.name or kuberay.rayjob_name(path.stem)
    manifest = kuberay.rayjob_manifest(
        resolved,
        name=name,
        image=args.image,
        secret=args.secret,
        namespace=args.namespace,
        working_dir=args.working_dir,
    )
    kuberay.validate_manifest(manifest)
    text = kuberay.manifest_yaml(manifest, source=path.name)
    if not args.output:
        print(text, end="")
        return 0
    output = Path(args.output)
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, output)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise RlfleetError(f"cannot write {output}: {err.strerror}.") from None
    print(f"wrote RayJob {name!r} to {output}; apply it with `kubectl apply -f {output}`")
    return 0
