"""The explorer's shared state: what create_app hands every panel's ``router(state)``.

Only what several panels share lives here: the images of this session, the
runs, the training jobs, the folder runs are listed from and written to, the
--dataset folder jobs may train on, and who can reach the page. A panel's own
state (the playground's last filtered images, the samples' test splits, why's
strongest responses) is made inside that panel's ``router(state)``, so this
module imports no panel.
"""

from __future__ import annotations

from pathlib import Path

from convlens.web.job_manager import JobManager
from convlens.web.store import ImageStore, RunRegistry


class Explorer:
    """The server's shared state: images, runs and jobs over one runs folder."""

    def __init__(
        self,
        runs_root: Path,
        run: Path | None = None,
        dataset: str | Path | None = None,
        reach: str = "",
    ) -> None:
        self.runs_root = Path(runs_root)
        self.dataset = dataset
        self.reach = reach  # who can open the page, said in its header (web/doors.py)
        self.images = ImageStore()
        self.runs = RunRegistry(self.runs_root, run)
        self.jobs = JobManager(self.runs_root, dataset)
