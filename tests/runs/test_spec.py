"""The run specification: the seed's fields, YAML, checks, the entry script's command line."""

from __future__ import annotations

import shlex

import pytest

from rlfleet import RunSpec, WorkerConfiguration
from rlfleet.errors import RunSpecError
from rlfleet.runs.spec import parse_size


def test_seed_estimator_fields_and_quoting():
    spec = RunSpec(
        source_directory="files",
        entry_script="pong_rllib.py",
        script_params={
            "--run": "IMPALA",
            "--env": "PongNoFrameskip-v4",
            # The seed wraps JSON in an extra pair of single quotes for AML's shell.
            "--config": '\'{"num_gpus": 1, "num_workers": 13}\'',
            "--stop": {"episode_reward_mean": 18, "time_total_s": 3600},
            "--verbose": True,
            "--quiet": False,
        },
        compute_target="head-gpu",
        worker_configuration=WorkerConfiguration(compute_target="worker-cpu", node_count=4),
        shm_size=24 * 1024**3,
    ).checked()
    assert spec.script_args() == [
        "--run",
        "IMPALA",
        "--env",
        "PongNoFrameskip-v4",
        "--config",
        '{"num_gpus": 1, "num_workers": 13}',
        "--stop",
        '{"episode_reward_mean": 18, "time_total_s": 3600}',
        "--verbose",
    ]
    argv = shlex.split(spec.entrypoint())
    assert argv[:2] == ["python", "pong_rllib.py"]
    assert argv[2:] == spec.script_args()
    assert spec.shm_bytes == 24 * 1024**3


def test_yaml_round_trip_and_relative_source_directory(tmp_path):
    (tmp_path / "files").mkdir()
    spec = RunSpec(
        source_directory="files",
        entry_script="x.py",
        compute_target="head",
        worker_configuration=WorkerConfiguration("workers", node_count=2, pip_packages=["six"]),
        pip_packages=["numpy"],
    )
    path = tmp_path / "run.yaml"
    path.write_text(spec.to_yaml())
    loaded = RunSpec.from_yaml(path)
    assert loaded.source_directory == str(tmp_path / "files")
    assert loaded.worker_configuration == spec.worker_configuration
    assert loaded.all_pip_packages() == ["numpy", "six"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"entry_script": "x.py"}, "no 'source_directory'"),
        ({"source_directory": ".", "entry_script": "x.py", "colour": 1}, "unknown field 'colour'"),
        (
            {"source_directory": ".", "entry_script": "x.py", "script_params": {"--c": "{bad"}},
            "not valid JSON",
        ),
        (
            {"source_directory": ".", "entry_script": "x.py", "script_params": {"--c": "[1,"}},
            "not valid JSON",
        ),
        (
            {"source_directory": ".", "entry_script": "x.py", "use_gpu": "yes"},
            "use_gpu must be a bool",
        ),
        (
            {"source_directory": ".", "entry_script": "x.py", "max_run_duration_seconds": -1},
            "above 0",
        ),
        ({"source_directory": ".", "entry_script": "x.py", "shm_size": "lots"}, "is not a size"),
        (
            {"source_directory": ".", "entry_script": "x.py", "pip_packages": "numpy"},
            "list of strings",
        ),
        (
            {"source_directory": ".", "entry_script": "x.py", "environment_variables": {"1X": "a"}},
            "variable names",
        ),
        (
            {
                "source_directory": ".",
                "entry_script": "x.py",
                "worker_configuration": {"node_count": 2},
            },
            "no 'compute_target'",
        ),
        (
            {
                "source_directory": ".",
                "entry_script": "x.py",
                "worker_configuration": {"compute_target": "w", "gpus": 1},
            },
            "unknown field 'gpus'",
        ),
        ("just a string", "must be a mapping"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(data, message):
    with pytest.raises(RunSpecError, match=message):
        RunSpec.from_dict(data)


def test_sizes():
    assert parse_size(1024) == 1024
    assert parse_size("2g") == 2 * 1024**3
    assert parse_size("512MiB") == 512 * 1024**2
    assert parse_size("1.5k") == 1536
    with pytest.raises(RunSpecError):
        parse_size(0)


def test_resolve_checks_the_workspace(workspace, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("print(1)\n")
    spec = RunSpec(
        source_directory=str(tmp_path / "src"),
        entry_script="train.py",
        compute_target="head",
        worker_configuration=WorkerConfiguration("workers", node_count=2),
    )
    resolved = spec.resolve(workspace)
    assert resolved.head.name == "head"
    assert resolved.workers.name == "workers"
    assert resolved.node_count == 2
    with pytest.raises(RunSpecError, match="is not a file"):
        RunSpec(
            source_directory=str(tmp_path / "src"),
            entry_script="../escape.py",
            compute_target="head",
        ).resolve(workspace)
    (tmp_path / "escape.py").write_text("")
    with pytest.raises(RunSpecError, match="must lie in source_directory"):
        RunSpec(
            source_directory=str(tmp_path / "src"),
            entry_script="../escape.py",
            compute_target="head",
        ).resolve(workspace)
    with pytest.raises(RunSpecError, match="names no compute_target"):
        RunSpec(source_directory=str(tmp_path / "src"), entry_script="train.py").resolve(workspace)


def test_yaml_dates_in_script_params_are_arguments_as_written(tmp_path):
    (tmp_path / "run.py").write_text("")
    (tmp_path / "run.yaml").write_text(
        "source_directory: .\nentry_script: run.py\n"
        "script_params: {--since: 2020-01-02, --at: 2020-01-02 03:04:05, --seeds: [1, 2]}\n"
    )
    args = RunSpec.from_yaml(tmp_path / "run.yaml").script_args()
    assert args == ["--since", "2020-01-02", "--at", "2020-01-02 03:04:05", "--seeds", "[1, 2]"]
