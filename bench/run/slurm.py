"""Slurm executor: the same ``run(tasks, done)`` contract as LocalExecutor, on a cluster.

Tasks go out as one Slurm job array per stage (submitit, one task per array element); each
element runs ``bench.compute.runner.execute`` on a compute node against the shared ``cache_dir``.
The coordinator polls the jobs and calls ``done(task, outcome)`` in its own process as each
finishes, so only it writes records and MLflow, exactly as with local workers. A job that
dies at the Slurm level (cancelled, node failure, out of memory, time limit) becomes a
one-line failure naming the job and its Slurm state.

Job states come from ``sacct``; on clusters without accounting (a single-node test
cluster) they come from ``squeue --states=all``, which keeps finished jobs for MinJobAge.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import (
    FailedJobError,
    FailedSubmissionError,
    UncompletedJobError,
)
from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

from bench.compute import kernels
from bench.compute.runner import execute
from bench.core.errors import XPruneError, one_line
from bench.core.tasks import Outcome, Task
from bench.run.executors import Callback

log = logging.getLogger(__name__)

_HEADER = "JobID|State|NodeList"  # what sacct prints and submitit parses
_SQUEUE_FORMAT = "%i|%T|%N"  # the same three columns from squeue


class SlurmError(XPruneError):
    """Slurm is unusable: sbatch missing, a submission refused, a bad executor setting."""


@functools.cache
def _sacct_works() -> bool:
    """Whether ``sacct`` can answer here (it cannot when Slurm accounting is disabled)."""
    try:
        probe = subprocess.run(["sacct", "-n", "-X", "-o", "JobID", "-j", "1"],
                               capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


class _Watcher(SlurmInfoWatcher):
    """submitit's job-state watcher, falling back to ``squeue`` where ``sacct`` fails."""

    def _make_command(self) -> list[str] | None:
        command = super()._make_command()
        if command is None or _sacct_works():
            return command
        ids = sorted({x.split("_")[0] for x in self._registered - self._finished})
        return ["squeue", "--states=all", "--noheader", f"--format={_SQUEUE_FORMAT}",
                "--jobs", ",".join(ids)]

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        text = string.decode() if isinstance(string, bytes) else string
        return super().read_info(text if text.startswith("JobID") else f"{_HEADER}\n{text}")


class _Job(SlurmJob):
    watcher = _Watcher(delay_s=30)


class _Executor(submitit.SlurmExecutor):
    job_class = _Job


def run_task(task: Task, cache_dir: str, threads: int, device: str = "cpu") -> Outcome:
    """What one array element runs: ``execute`` on ``device``, torch limited to the job's CPUs,
    kernels pinned (``bench.compute.kernels``; the batch script exports the pin too)."""
    from bench.compute import kernels

    kernels.pin()
    import torch

    torch.set_num_threads(threads)
    return execute(task, Path(cache_dir), device)


class SlurmExecutor:
    """Run tasks as Slurm job arrays; ``folder`` holds submitit's scripts and logs.

    ``gpus`` per task become ``#SBATCH --gpus-per-node=N`` (submitit's ``gpus_per_node``;
    one task per node-share of an array element); ``device`` is what each task computes on.
    """

    def __init__(self, cache_dir: Path, folder: Path, partition: str | None = None,
                 time_min: int = 60, gpus: int = 0, cpus: int = 1, array_parallelism: int = 64,
                 extra: dict[str, Any] | None = None, poll: float = 2.0,
                 job_name: str = "xprune", device: str = "cpu") -> None:
        self.cache_dir = Path(cache_dir)
        self.folder = Path(folder)
        self.partition = partition
        self.time_min = time_min
        self.gpus = gpus
        self.cpus = cpus
        self.array_parallelism = array_parallelism
        self.extra = dict(extra or {})
        self.poll = poll
        self.job_name = job_name
        self.device = device

    def _executor(self) -> _Executor:
        params = self.parameters()
        executor = _Executor(folder=self.folder.absolute() / "%j")
        executor.update_parameters(**params)
        return executor

    def parameters(self) -> dict[str, Any]:
        """submitit's ``SlurmExecutor.update_parameters`` arguments for this executor."""
        if self.time_min < 1 or self.cpus < 1 or self.gpus < 0 or self.array_parallelism < 1:
            raise SlurmError("slurm: time_min, cpus and array_parallelism must be >= 1, gpus >= 0")
        if self.device == "cuda" and self.gpus < 1:
            raise SlurmError("slurm: device cuda needs gpus >= 1 per task")
        params: dict[str, Any] = {"time": self.time_min, "cpus_per_task": self.cpus,
                                  "array_parallelism": self.array_parallelism,
                                  "job_name": self.job_name}
        if self.partition:
            params["partition"] = self.partition
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        if self.extra:
            params["additional_parameters"] = self.extra
        if kernels.exports():
            params["setup"] = kernels.exports()  # before Python starts (bench.compute.kernels)
        return params

    def submit(self, tasks: list[Task]) -> list[_Job]:
        """Submit ``tasks`` as one job array (one element per task); return its jobs."""
        n, executor = len(tasks), self._executor()
        try:
            jobs = executor.map_array(run_task, tasks, [str(self.cache_dir.absolute())] * n,
                                      [self.cpus] * n, [self.device] * n)
        except (FailedSubmissionError, OSError, subprocess.SubprocessError) as exc:
            raise SlurmError(f"slurm submission failed: {one_line(exc)}") from None
        # submitit builds array elements as plain SlurmJob (sacct only); watch ours instead
        return [_Job(folder=executor.folder, job_id=job.job_id) for job in jobs]

    def close(self) -> None:
        """Nothing to free: every stage's jobs have ended when ``run`` returns."""

    def run(self, tasks: Iterable[Task], done: Callback) -> None:
        """Run every task; call ``done(task, outcome)`` in this process as each finishes."""
        tasks = list(tasks)
        if not tasks:
            return
        started = time.monotonic()
        pending = list(zip(self.submit(tasks), tasks))
        log.info("submitted %d task(s) as slurm array %s", len(tasks),
                 pending[0][0].job_id.split("_")[0])
        try:
            while pending:
                still = []
                for job, task in pending:
                    if job.done():
                        done(task, outcome(job, time.monotonic() - started))
                    else:
                        still.append((job, task))
                pending = still
                if pending:
                    time.sleep(self.poll)
        except BaseException:
            for job, _ in pending:
                job.cancel(check=False)
            raise


def outcome(job: SlurmJob, seconds: float) -> Outcome:
    """The task's own outcome, or a one-line failure naming the job's Slurm state."""
    try:
        return job.result()
    except (UncompletedJobError, FailedJobError) as exc:
        return Outcome.failure(f"slurm job {job.job_id} {job.state}: {_reason(exc)}", seconds)
    except Exception as exc:  # noqa: BLE001 (an unreadable result pickle, a vanished folder)
        return Outcome.failure(f"slurm job {job.job_id} {job.state}: {one_line(exc)}", seconds)


def _reason(exc: Exception) -> str:
    """One line out of submitit's multi-line job errors."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if isinstance(exc, FailedJobError):
        trace = [line for line in lines if not line.startswith(("-", "File ", "You can"))]
        return trace[-1] if trace else "job raised"
    return next((line for line in lines if line.startswith("has not produced")),
                lines[0] if lines else "no output")
