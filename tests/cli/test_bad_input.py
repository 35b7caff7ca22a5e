"""Bad input gets a one-line error, a non-zero exit, and leaves the workspace intact.

Most commands run in this process (``cli``: the CLI's ``main()``, a second or two quicker per
call than a fresh Python); a real ``rlfleet`` process checks the same for a malformed spec, an
unknown command and a folder that is no workspace."""

from __future__ import annotations

import pytest
from support import cli_in_process, run_cli, workspace_state, write_spec


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("rlfleet: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def cli(workspace, *args: str):
    """``rlfleet ARGS`` in ``workspace``, in this process."""
    return cli_in_process(*args, workspace=workspace.root)


def _no_runs(workspace) -> bool:
    result = cli(workspace, "runs", "list", "--json")
    return result.code == 0 and result.out.strip() == "[]"


@pytest.mark.parametrize(
    ("fields", "fragments"),
    [
        (
            {"entry_script": "fails.py", "compute_target": "gpu-head"},
            ["no compute target named 'gpu-head'", "known: head, workers"],
        ),
        (
            {
                "entry_script": "fails.py",
                "worker_configuration": {"compute_target": "nope", "node_count": 1},
            },
            ["no compute target named 'nope'"],
        ),
        (
            {"entry_script": "fails.py", "script_params": {"--config": '{"num_workers": 2,}'}},
            ["script_params['--config'] is not valid JSON"],
        ),
        ({"entry_script": "missing.py"}, ["entry_script 'missing.py' is not a file"]),
        ({"entry_script": "fails.py", "max_nodes": 3}, ["unknown field 'max_nodes'"]),
        (
            {"entry_script": "fails.py", "environment_variables": {"OMP_NUM_THREADS": 1}},
            ["environment_variables['OMP_NUM_THREADS'] must be a string", "OMP_NUM_THREADS: '1'"],
        ),
        (
            {
                "entry_script": "fails.py",
                "worker_configuration": {"compute_target": "workers", "node_count": 9},
            },
            ["node_count is 9", "at most 2"],
        ),
    ],
)
def test_bad_run_specs_are_refused_before_anything_runs(workspace, tmp_path, fields, fragments):
    before = workspace_state(workspace)
    spec = write_spec(tmp_path / "run.yaml", **fields)
    result = cli(workspace, "submit", str(spec))
    assert_one_line_error(result, *fragments)
    assert workspace_state(workspace) == before
    assert _no_runs(workspace)


def test_malformed_yaml_spec(workspace, tmp_path):
    before = workspace_state(workspace)
    spec = tmp_path / "run.yaml"
    spec.write_text("entry_script: [unclosed\nsource_directory: .\n")
    assert_one_line_error(
        run_cli("submit", str(spec), cwd=workspace.root), "is not valid YAML", "line"
    )
    assert_one_line_error(cli(workspace, "submit", str(tmp_path / "absent.yaml")), "cannot read")
    assert workspace_state(workspace) == before
    assert _no_runs(workspace)


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "show", "0123456789abcdef0123456789abcdef"],
        ["runs", "show", "nope"],
        ["runs", "logs", "nope"],
        ["runs", "metrics", "nope", "reward"],
        ["runs", "cancel", "nope"],
        ["runs", "wait", "nope"],
    ],
)
def test_unknown_run_id(workspace, args):
    before = workspace_state(workspace)
    assert_one_line_error(cli(workspace, *args), "no run with id", "rlfleet runs list")
    assert workspace_state(workspace) == before


def test_compute_target_errors(workspace):
    before = workspace_state(workspace)
    assert_one_line_error(
        cli(workspace, "compute", "show", "nope"), "no compute target named 'nope'"
    )
    assert_one_line_error(
        cli(workspace, "compute", "delete", "nope"), "no compute target named 'nope'"
    )
    assert_one_line_error(cli(workspace, "compute", "create", "head"), "already exists")
    assert_one_line_error(
        cli(workspace, "compute", "create", "x", "--max-nodes", "0"), "--max-nodes"
    )
    assert_one_line_error(
        cli(workspace, "compute", "create", "r", "--kind", "ray"), "needs --address"
    )
    assert_one_line_error(
        cli(workspace, "compute", "create", "x", "--cpus", "two"), "invalid int value"
    )
    assert_one_line_error(cli(workspace, "cluster", "up", "nope"), "no compute target named 'nope'")
    assert workspace_state(workspace) == before


def test_outside_a_workspace(tmp_path):
    result = run_cli("runs", "list", cwd=tmp_path)
    assert_one_line_error(result, "no rlfleet.yaml", "rlfleet init")


def test_broken_workspace_config(workspace):
    workspace.config_path.write_text("name: ws\ntracking_uri: [\n")
    assert_one_line_error(cli(workspace, "runs", "list"), "rlfleet.yaml is not valid YAML")
    workspace.config_path.write_text("name: ws\ncolour: blue\n")
    assert_one_line_error(cli(workspace, "runs", "list"), "unknown setting 'colour'")


def test_unknown_command_and_metric(workspace):
    assert_one_line_error(run_cli("launch", cwd=workspace.root), "invalid choice")
    assert_one_line_error(cli(workspace, "runs", "show"), "the following arguments are required")
