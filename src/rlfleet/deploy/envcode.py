"""The user's own environment code, shipped with a training run and loaded back from it.

``rlfleet train --source-directory DIR`` copies ``DIR`` into the run's source folder (which Ray
ships to every node as the job's ``working_dir``) and logs the same files as the run's artifacts
under ``environment/``, tagged ``rlfleet.environment_code``. ``rlfleet evaluate`` and ``rlfleet
play --run`` then rebuild the environment on a machine that has only the run:
:func:`download_environment_code` fetches the files, :func:`use_environment_code` makes them the
code that ``import`` finds.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from rlfleet.errors import RlfleetError, RunSpecError

if TYPE_CHECKING:
    from rlfleet.runs.run import Run

logger = logging.getLogger(__name__)

ENVIRONMENT_CODE = "environment"
"""The artifact folder of a run that holds its environment code."""
ENVIRONMENT_CODE_TAG = "rlfleet.environment_code"
"""The run tag naming that folder; a run without it has no environment code of its own."""
SKIPPED = frozenset({"__pycache__", ".git", ".venv", ".rlfleet"})
"""Names never copied from a source directory (caches, repositories, virtualenvs, workspaces)."""
MAX_SOURCE_BYTES = 100 * 2**20
"""The largest source directory shipped: Ray uploads it to every node for every run."""


def check_source_directory(path: str | os.PathLike[str], *, reserved: Iterable[str] = ()) -> Path:
    """The resolved folder of environment code, checked to be shippable.

    Args:
        path: The folder given with ``--source-directory``.
        reserved: File names that must not lie at the folder's top (the trainer's entry script).

    Returns:
        The folder's absolute path.

    Raises:
        RunSpecError: the folder is missing, not a folder, holds a reserved name, or holds more
            than ``MAX_SOURCE_BYTES`` (skipped names not counted).
    """
    folder = Path(path).expanduser()
    if not folder.exists():
        raise RunSpecError(
            f"source directory {path} does not exist; give the folder of your environment's code."
        )
    if not folder.is_dir():
        raise RunSpecError(
            f"source directory {path} is not a folder; give the folder that holds your environment's module."
        )
    folder = folder.resolve()
    for name in reserved:
        if (folder / name).exists():
            raise RunSpecError(
                f"source directory {folder} has its own {name} at its top; the built-in "
                f"trainer is the run's {name}: rename yours, or run it with `rlfleet submit`."
            )
    size = sum(p.stat().st_size for p in _files(folder))
    if size > MAX_SOURCE_BYTES:
        raise RunSpecError(
            f"source directory {folder} holds {size / 2**20:.0f} MiB, more than the "
            f"{MAX_SOURCE_BYTES // 2**20} MiB shipped to every node; keep only the environment's "
            "code there (install big dependencies with --pip-package)."
        )
    return folder


def copy_source_directory(folder: Path, destination: Path) -> list[str]:
    """Copy ``folder``'s contents into ``destination`` (skipping ``SKIPPED`` names); returns the
    names copied at the top, for :func:`log_environment_code`."""
    destination.mkdir(parents=True, exist_ok=True)
    names = []
    for entry in sorted(folder.iterdir()):
        if entry.name in SKIPPED:
            continue
        target = destination / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, ignore=shutil.ignore_patterns(*SKIPPED, "*.pyc"))
        elif entry.is_file():
            shutil.copy2(entry, target)
        else:
            continue
        names.append(entry.name)
    return names


def log_environment_code(run: Run, folder: Path, names: Iterable[str]) -> None:
    """Log ``names`` (files and folders at the top of ``folder``) as the run's artifacts under
    ``environment/``."""
    client = run.store.client
    for name in names:
        path = folder / name
        if path.is_dir():
            client.log_artifacts(run.id, str(path), f"{ENVIRONMENT_CODE}/{name}")
        else:
            client.log_artifact(run.id, str(path), ENVIRONMENT_CODE)


def download_environment_code(run: Run) -> Path | None:
    """The run's environment code in a fresh temporary folder, or None if the run has none.

    Args:
        run: A run of ``rlfleet train`` (any run: one without environment code gives None).

    Returns:
        The folder holding the files the run was trained with (its modules at the top).

    Raises:
        RlfleetError: the run says it has environment code but its artifacts cannot be read.
    """
    folder = run.tags.get(ENVIRONMENT_CODE_TAG)
    if not folder:
        return None
    destination = Path(tempfile.mkdtemp(prefix="rlfleet-envcode-"))
    try:
        return run.store.download_artifacts(run.id, folder, destination)
    except Exception as err:
        shutil.rmtree(destination, ignore_errors=True)
        raise RlfleetError(
            f"cannot fetch run {run.id}'s environment code ({folder}/): {err}"
        ) from None


def use_environment_code(path: str | os.PathLike[str]) -> None:
    """Make the modules in ``path`` the ones ``import`` finds: the folder goes first on
    ``sys.path`` and modules of the same top-level names imported from elsewhere are dropped
    from ``sys.modules``. Calling it again with the same folder changes nothing.

    Args:
        path: A folder of environment code (a run's, or a ``--source-directory``).

    Raises:
        RlfleetError: ``path`` is not a folder.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise RlfleetError(f"environment code folder {path} is not a folder.")
    folder = folder.resolve()
    entry = str(folder)
    if sys.path[:1] != [entry]:
        sys.path[:] = [entry, *(p for p in sys.path if p != entry)]
    forget_stale_modules(folder)


def forget_stale_modules(path: str | os.PathLike[str]) -> None:
    """Drop from ``sys.modules`` the modules named as those at the top of folder ``path`` (and
    their submodules) that were imported from elsewhere, so that the next import finds the
    folder's; the standard library's names are left alone."""
    folder = Path(path).expanduser().resolve()
    for name in _top_level_modules(folder):
        if name in sys.stdlib_module_names:
            logger.warning(
                "%s in %s shadows the standard library; it is not reloaded", name, folder
            )
            continue
        for module_name in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            if not _imported_from(sys.modules[module_name], folder):
                logger.info("dropping %s (imported from elsewhere) for %s", module_name, folder)
                del sys.modules[module_name]
    importlib.invalidate_caches()


def _top_level_modules(folder: Path) -> list[str]:
    names = []
    for entry in folder.iterdir():
        if entry.name in SKIPPED:
            continue
        if entry.is_dir() and entry.name.isidentifier():
            names.append(entry.name)
        elif entry.suffix == ".py" and entry.stem.isidentifier():
            names.append(entry.stem)
    return names


def _imported_from(module: object, folder: Path) -> bool:
    locations = [getattr(module, "__file__", None), *list(getattr(module, "__path__", []) or [])]
    return any(location and folder in Path(location).resolve().parents for location in locations)


def _files(folder: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in SKIPPED]
        for name in files:
            path = Path(root) / name
            if path.is_file():
                yield path


__all__ = [
    "ENVIRONMENT_CODE",
    "ENVIRONMENT_CODE_TAG",
    "check_source_directory",
    "copy_source_directory",
    "download_environment_code",
    "forget_stale_modules",
    "log_environment_code",
    "use_environment_code",
]
