"""The run specification: the seed's ``ReinforcementLearningEstimator`` fields, in Python or YAML.

Example ``run.yaml``::

    source_directory: files
    entry_script: pong_rllib.py
    script_params: {--run: IMPALA, --env: PongNoFrameskip-v4, --config: '{"num_workers": 2}'}
    compute_target: head-cpu
    worker_configuration: {compute_target: worker-cpu, node_count: 2}
    max_run_duration_seconds: 3600
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rlfleet.errors import RunSpecError

if TYPE_CHECKING:
    from rlfleet.compute.target import ComputeTarget
    from rlfleet.workspace import Workspace

ScriptParams = dict[str, Any] | list[str]


@dataclass(frozen=True)
class WorkerConfiguration:
    """The worker nodes of a run, as the seed's ``WorkerConfiguration``."""

    compute_target: str
    """The compute target the worker nodes come from."""
    node_count: int = 1
    """How many worker nodes to start (or to find, on a ``ray`` target)."""
    use_gpu: bool = False
    """Offer the target's GPUs on the worker nodes."""
    pip_packages: list[str] = field(default_factory=list)
    """Extra packages for the run's environment (merged with the head's)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "compute_target", _target_name(self.compute_target))


@dataclass(frozen=True)
class RunSpec:
    """What to run and where, as the seed's ``ReinforcementLearningEstimator``."""

    source_directory: str
    """Folder uploaded as the entry script's working directory."""
    entry_script: str
    """Script to run, relative to ``source_directory``."""
    script_params: ScriptParams = field(default_factory=dict)
    """Arguments: ``{"--flag": value}`` (the seed's form) or a list of strings."""
    compute_target: str | None = None
    """The compute target of the head node, where the entry script runs."""
    pip_packages: list[str] = field(default_factory=list)
    """Packages installed (by Ray's runtime env) for the entry script and its tasks."""
    environment_variables: dict[str, str] = field(default_factory=dict)
    """Environment variables of the entry script and its tasks."""
    use_gpu: bool = False
    """Offer the head target's GPUs on the head node."""
    worker_configuration: WorkerConfiguration | None = None
    """Worker nodes; ``None`` runs on the head node alone."""
    cluster_coordination_timeout_seconds: float = 600.0
    """How long every node may take to join the cluster before the run fails."""
    max_run_duration_seconds: float | None = None
    """Cancel the run once its entry script has run this long."""
    shm_size: int | str | None = None
    """Shared memory for Ray's object store on each node: bytes, or '2g', '512m'."""

    def __post_init__(self) -> None:
        if self.compute_target is not None:
            object.__setattr__(self, "compute_target", _target_name(self.compute_target))
        if isinstance(self.worker_configuration, dict):
            object.__setattr__(
                self, "worker_configuration", _worker_from_dict(self.worker_configuration)
            )

    # -- (de)serialising ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "run spec") -> RunSpec:
        if not isinstance(data, dict):
            raise RunSpecError(f"{source} must be a mapping of run settings.")
        _reject_unknown(data, cls, source)
        for required in ("source_directory", "entry_script"):
            if not data.get(required):
                raise RunSpecError(f"{source} has no {required!r}; add it.")
        try:
            spec = cls(**data)
        except TypeError as err:
            raise RunSpecError(f"{source}: {err}.") from None
        return spec.checked(source)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunSpec:
        """Read a YAML run spec; a relative ``source_directory`` is relative to the file."""
        path = Path(path)
        spec = cls.from_dict(read_yaml(path, what="a run spec"), source=str(path))
        source_dir = Path(spec.source_directory)
        if not source_dir.is_absolute():
            spec = replace(spec, source_directory=str((path.parent / source_dir).resolve()))
        return spec

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    # -- checks ---------------------------------------------------------------------------------

    def checked(self, source: str = "run spec") -> RunSpec:
        """Check the types and values that need no workspace; return self."""
        _check_type(self.source_directory, str, "source_directory", source)
        _check_type(self.entry_script, str, "entry_script", source)
        if not isinstance(self.script_params, dict | list):
            raise RunSpecError(f"{source}: script_params must be a mapping or a list.")
        _check_str_list(self.pip_packages, "pip_packages", source)
        if not isinstance(self.environment_variables, dict) or not all(
            isinstance(k, str) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k)
            for k in self.environment_variables
        ):
            raise RunSpecError(
                f"{source}: environment_variables must map variable names to values."
            )
        for name, value in self.environment_variables.items():
            if not isinstance(value, str):
                raise RunSpecError(
                    f"{source}: environment_variables[{name!r}] must be a string, not "
                    f"{value!r:.40}; quote it in YAML ({name}: '{value}')."
                )
        _check_type(self.use_gpu, bool, "use_gpu", source)
        _check_number(
            self.cluster_coordination_timeout_seconds,
            "cluster_coordination_timeout_seconds",
            source,
        )
        if self.max_run_duration_seconds is not None:
            _check_number(self.max_run_duration_seconds, "max_run_duration_seconds", source)
        if self.shm_size is not None:
            parse_size(self.shm_size)
        worker = self.worker_configuration
        if worker is not None:
            if not isinstance(worker, WorkerConfiguration):
                raise RunSpecError(
                    f"{source}: worker_configuration must be a mapping with compute_target, "
                    "node_count, use_gpu and pip_packages."
                )
            if not isinstance(worker.node_count, int) or isinstance(worker.node_count, bool):
                raise RunSpecError(f"{source}: worker_configuration.node_count must be an integer.")
            if worker.node_count < 0:
                raise RunSpecError(f"{source}: worker_configuration.node_count must be 0 or more.")
            _check_type(worker.use_gpu, bool, "worker_configuration.use_gpu", source)
            _check_str_list(worker.pip_packages, "worker_configuration.pip_packages", source)
        self.script_args()  # raises on malformed JSON values
        return self

    def resolve(self, workspace: Workspace) -> ResolvedSpec:
        """Check the spec against a workspace: targets exist, node counts fit, files exist."""
        self.checked()
        if not self.compute_target:
            known = ", ".join(workspace.compute_targets) or "none yet"
            raise RunSpecError(
                f"the run spec names no compute_target for the head (known: {known}); add one."
            )
        head = workspace.compute.get(self.compute_target)
        workers: ComputeTarget | None = None
        if self.worker_configuration is not None:
            workers = workspace.compute.get(self.worker_configuration.compute_target)
            if (
                workers.kind is not head.kind
                or workers.address != head.address
                or workers.head_host != head.head_host
            ):
                raise RunSpecError(
                    f"worker target {workers.name!r} ({workers.kind.value}) and head target "
                    f"{head.name!r} ({head.kind.value}) must be of the same kind (and, for "
                    "'ray', the same cluster address; for 'ssh', the same head host)."
                )
            if self.worker_configuration.node_count > workers.max_nodes:
                raise RunSpecError(
                    f"worker_configuration.node_count is {self.worker_configuration.node_count} "
                    f"but compute target {workers.name!r} allows at most {workers.max_nodes} "
                    "nodes; lower node_count or raise its --max-nodes."
                )
        source_dir = Path(self.source_directory).expanduser().resolve()
        if not source_dir.is_dir():
            raise RunSpecError(f"source_directory {source_dir} is not a folder; fix the path.")
        entry = (source_dir / self.entry_script).resolve()
        if not entry.is_file():
            raise RunSpecError(
                f"entry_script {self.entry_script!r} is not a file in {source_dir}; fix the name."
            )
        if source_dir not in entry.parents:
            raise RunSpecError(f"entry_script {self.entry_script!r} must lie in source_directory.")
        spec = replace(self, source_directory=str(source_dir))
        return ResolvedSpec(spec=spec, head=head, workers=workers)

    # -- the command ----------------------------------------------------------------------------

    def script_args(self) -> list[str]:
        """The entry script's arguments. JSON-looking values must parse; a value wrapped in one
        extra pair of single quotes (the seed's shell-quoting habit) loses that pair."""
        if isinstance(self.script_params, list):
            return [str(arg) for arg in self.script_params]
        args: list[str] = []
        for flag, value in self.script_params.items():
            if value is None or value is True:
                args.append(str(flag))
                continue
            if value is False:
                continue
            text = _strip_seed_quotes(_param_text(value))
            if text.lstrip()[:1] in ("{", "["):
                try:
                    json.loads(text)
                except json.JSONDecodeError as err:
                    raise RunSpecError(
                        f"script_params[{flag!r}] is not valid JSON ({err.msg} at column "
                        f"{err.colno}); write it like '{{\"key\": 1}}'."
                    ) from None
            args.extend([str(flag), text])
        return args

    def entrypoint(self) -> str:
        """The shell command Ray's Job API runs in the working directory."""
        return shlex.join(["python", self.entry_script, *self.script_args()])

    def all_pip_packages(self) -> list[str]:
        extra = self.worker_configuration.pip_packages if self.worker_configuration else []
        return list(dict.fromkeys([*self.pip_packages, *extra]))

    @property
    def shm_bytes(self) -> int | None:
        return None if self.shm_size is None else parse_size(self.shm_size)


@dataclass(frozen=True)
class ResolvedSpec:
    """A spec checked against a workspace, with its compute targets looked up."""

    spec: RunSpec
    head: ComputeTarget
    workers: ComputeTarget | None

    @property
    def node_count(self) -> int:
        worker = self.spec.worker_configuration
        return worker.node_count if worker is not None else 0


# -- helpers ------------------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def read_yaml(path: Path, *, what: str) -> Any:
    """The YAML document in ``path``, or a one-line RunSpecError (unreadable, not UTF-8, not
    YAML with its line and column, nested too deeply to be ``what``)."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as err:
        raise RunSpecError(f"cannot read {path}: {err.strerror}.") from None
    except UnicodeDecodeError:
        raise RunSpecError(f"{path} is not UTF-8 text; is it a YAML file?") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RunSpecError(f"{path} is not valid YAML{where}; fix the file.") from None
    except RecursionError:
        raise RunSpecError(f"{path} is nested too deeply to be {what}.") from None


def parse_size(value: int | str) -> int:
    """Bytes from an int or a string such as ``'2g'``, ``'512MiB'``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise RunSpecError(f"shm_size {value!r} is not a size; use bytes or e.g. '2g', '512m'.")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** " kmgt".index(unit or " "))


def _param_text(value: Any) -> str:
    """A script parameter's value as the argument's text: strings as they are, numbers, lists
    and mappings as JSON, anything else YAML gives (dates, timestamps) as written."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | list | dict):
        try:
            return json.dumps(value, default=str)
        except (ValueError, RecursionError):  # circular (YAML aliases) or too deep
            raise RunSpecError(
                "a script_params value is circular or nested too deeply to be an argument."
            ) from None
    return str(value)


def _strip_seed_quotes(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1]
    return text


def _target_name(target: Any) -> str:
    name = getattr(target, "name", target)
    if not isinstance(name, str):
        raise RunSpecError("compute_target must be a compute target name.")
    return name


def _worker_from_dict(data: dict[str, Any]) -> WorkerConfiguration:
    _reject_unknown(data, WorkerConfiguration, "worker_configuration")
    if not data.get("compute_target"):
        raise RunSpecError("worker_configuration has no 'compute_target'; add one.")
    try:
        return WorkerConfiguration(**data)
    except TypeError as err:
        raise RunSpecError(f"worker_configuration: {err}.") from None


def _reject_unknown(data: dict[str, Any], cls: type, source: str) -> None:
    known = [f.name for f in fields(cls)]
    for key in data:
        if key not in known:
            raise RunSpecError(
                f"{source}: unknown field {key!r}; known fields are {', '.join(known)}."
            )


def _check_type(value: Any, kind: type, name: str, source: str) -> None:
    if not isinstance(value, kind):
        raise RunSpecError(f"{source}: {name} must be a {kind.__name__}, not {value!r}.")


def _check_number(value: Any, name: str, source: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise RunSpecError(f"{source}: {name} must be a number of seconds above 0.")


def _check_str_list(value: Any, name: str, source: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RunSpecError(f"{source}: {name} must be a list of strings.")


__all__ = ["ResolvedSpec", "RunSpec", "WorkerConfiguration", "parse_size", "read_yaml"]
