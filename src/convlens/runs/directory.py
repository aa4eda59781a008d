"""Run directories: the one hand-off between commands.

A run directory holds model.json, weights.safetensors, history.csv and
metrics.json. It is built under a hidden ``.<name>.partial`` sibling and
renamed into place only when complete, so a failed or interrupted run never
leaves a half-written run behind. Commands that read a trained model take
``--run DIR`` and default to the latest complete run under ``runs/``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convlens.errors import ConvlensError
from convlens.fsutil import atomic_write_text
from convlens.model.files import SPEC_FILE, WEIGHTS_FILE

RUNS_ROOT = Path("runs")
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
SPLIT_FILE = "split.json"  # a folder's held-out test images, so evaluate tests on the same


def new_run_name(model_name: str) -> str:
    """A fresh run name: <model>-<YYYYmmdd-HHMMSS>."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in model_name) or "model"
    return f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}"


def _unique(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


@dataclass(frozen=True)
class StagedRun:
    """A run being written: files go into ``staging``; on success it is renamed to ``final``."""

    staging: Path
    final: Path


def partial_path(final: Path) -> Path:
    """Where a run is built before it is published: a hidden .<name>.partial sibling."""
    return final.with_name(f".{final.name}.partial")


def _prepare_staging(final: Path, staging: Path, resume: bool) -> None:
    if resume:
        for stray in staging.glob(".*.tmp"):  # a write cut off by a kill
            stray.unlink(missing_ok=True)
        return
    if (staging / CHECKPOINT_FILE).is_file():
        raise ConvlensError(
            f"an interrupted run of {final} is waiting; continue it with "
            f"`convlens train --resume {final}` or remove {staging}."
        )
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    probe = staging / ".write-test"
    probe.write_bytes(b"0" * 4096)
    probe.unlink()


@contextmanager
def staged_run(
    out: str | Path | None, model_name: str, root: Path = RUNS_ROOT, resume: bool = False
) -> Iterator[StagedRun]:
    """Yield a StagedRun; on success staging becomes the run directory.

    ``out`` names the run directory (it must not exist yet); by default a new
    name under ``root``. Fails before any work when the place is not writable.
    On failure the staging directory is removed, unless it holds a checkpoint
    (then the run can be resumed). ``resume`` reuses an existing staging directory.
    """
    final = Path(out) if out else _unique(root / new_run_name(model_name))
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise ConvlensError(f"{final} already exists; choose another --out or remove it.")
    staging = partial_path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _prepare_staging(final, staging, resume)
    except OSError as exc:
        if not resume:
            shutil.rmtree(staging, ignore_errors=True)
        raise ConvlensError(
            f"cannot write the run directory {final} ({exc.strerror or exc}); "
            f"choose a writable place with --out."
        ) from None
    try:
        yield StagedRun(staging, final)
        (staging / CHECKPOINT_FILE).unlink(missing_ok=True)  # a finished run needs no resume
        if final.is_dir():
            final.rmdir()  # an empty directory the user named with --out
        os.replace(staging, final)
    except BaseException:
        if not (staging / CHECKPOINT_FILE).is_file():
            shutil.rmtree(staging, ignore_errors=True)
        raise


def find_interrupted(run: str | Path | None = None, root: Path = RUNS_ROOT) -> StagedRun:
    """The interrupted run ``run`` (its final path or its .partial), or the latest under root."""
    if run is None:
        waiting = [p for p in root.glob(".*.partial") if (p / CHECKPOINT_FILE).is_file()]
        if not waiting:
            raise ConvlensError(
                f"there is no interrupted run in {root}/ to resume; start one with `convlens train`."
            )
        staging = max(waiting, key=lambda p: (p / CHECKPOINT_FILE).stat().st_mtime)
        return StagedRun(staging, staging.with_name(staging.name[1 : -len(".partial")]))
    path = Path(run)
    if path.name.startswith(".") and path.name.endswith(".partial"):
        path = path.with_name(path.name[1 : -len(".partial")])
    staging = partial_path(path)
    if not (staging / CHECKPOINT_FILE).is_file():
        if is_run(path):
            raise ConvlensError(f"{path} finished already; there is nothing to resume.")
        raise ConvlensError(
            f"there is no interrupted run at {path} (no {staging.name}/{CHECKPOINT_FILE}); "
            f"check the path or start a new run."
        )
    return StagedRun(staging, path)


def write_history(directory: Path, rows: list[dict[str, Any]]) -> None:
    """history.csv: one row per epoch (epoch, losses, accuracies, seconds, learning rate)."""
    if not rows:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    atomic_write_text(directory / HISTORY_FILE, buffer.getvalue())


def read_history(directory: Path) -> list[dict[str, float | None]]:
    """history.csv back as a list of dicts of numbers (None where a value was not measured)."""
    path = Path(directory) / HISTORY_FILE
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]


def write_metrics(directory: Path, metrics: dict[str, Any]) -> None:
    """metrics.json, atomically."""
    atomic_write_text(directory / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")


def write_split(directory: Path, split: dict[str, Any]) -> None:
    """split.json: the seed, fraction and test files of a folder's held-out split."""
    atomic_write_text(directory / SPLIT_FILE, json.dumps(split, indent=1) + "\n")


def read_split(directory: Path) -> dict[str, Any] | None:
    """A run's recorded split (split.json), or None when its dataset had its own test set."""
    path = Path(directory) / SPLIT_FILE
    if not path.is_file():
        return None
    split = _read_json(path)
    files = split.get("test_files") if isinstance(split, dict) else None
    if not (isinstance(files, list) and all(isinstance(f, str) for f in files)):
        raise ConvlensError(f"{path} has no list of test_files; retrain or delete it.")
    return split


def read_metrics(directory: Path) -> dict[str, Any]:
    """A run's metrics.json ({} when it has none)."""
    path = Path(directory) / METRICS_FILE
    return _read_json(path) if path.is_file() else {}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConvlensError(f"{path} is not readable JSON ({exc}); retrain.") from None


def is_run(directory: Path) -> bool:
    """Whether ``directory`` holds a complete run (spec, weights, metrics)."""
    return all((directory / name).is_file() for name in (SPEC_FILE, WEIGHTS_FILE, METRICS_FILE))


def latest_run(root: Path = RUNS_ROOT) -> Path:
    """The most recently finished run under ``root``."""
    runs = [p for p in root.iterdir() if p.is_dir() and is_run(p)] if root.is_dir() else []
    if not runs:
        raise ConvlensError(
            f"there is no trained run in {root}/; train one with `convlens train` "
            f"or pass --run DIR."
        )
    return max(runs, key=lambda p: (p / METRICS_FILE).stat().st_mtime)


def resolve_run(run: str | Path | None, root: Path = RUNS_ROOT) -> Path:
    """The run directory named by --run, or the latest one."""
    if run is None:
        return latest_run(root)
    path = Path(run)
    if not path.is_dir():
        raise ConvlensError(f"run directory {path} does not exist; check --run.")
    if not (path / WEIGHTS_FILE).is_file():
        raise ConvlensError(
            f"{path} has no {WEIGHTS_FILE}; it is not a finished run (train one with "
            f"`convlens train`)."
        )
    return path






def run_name(path: Path) -> str:
    """A run's name: its directory's, also while it is still being written (.<name>.partial)."""
    name = Path(path).name
    if name.startswith(".") and name.endswith(".partial"):
        return name[1 : -len(".partial")]
    return name




CHECKPOINT_FILE = "checkpoint.safetensors"
