"""Executors: where tasks run. Local = a pool of long-lived worker processes.

Workers are spawned processes that import torch once and then run task after task, so
fault isolation costs nothing per cell. Workers never import a method plugin: a task that
needs scores starts a fresh scoring process for them (``bench.compute.sandbox``). If a worker dies mid-task (segfault, SIGKILL, OOM)
or a timed task overruns its timeout, that task alone is reported failed and a fresh worker
takes the dead one's place. Tasks and outcomes (``bench.core.tasks``) cross the pipe as they are
(pickled). Only the coordinating process sees results; workers never write records or MLflow.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Callable, Iterable

from bench.core.errors import XPruneError
from bench.core.tasks import Outcome, Task

Callback = Callable[[Task, Outcome], None]
SCORING_GRACE = 30.0  # seconds past twice its own bound before a scoring task's worker is killed


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _worker_main(conn: Connection, cache_dir: str, threads: int, device: str = "cpu") -> None:
    from bench.compute import kernels

    kernels.pin()  # before this process's first tensor operation (bench.compute.kernels)
    import torch

    from bench.compute.runner import execute

    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles Ctrl-C
    conn.send("ready")
    while True:
        message = conn.recv()
        if message is None:
            return
        conn.send(execute(message, Path(cache_dir), device))


class _Worker:
    def __init__(self, ctx, cache_dir: Path, threads: int, device: str = "cpu") -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main,
                                   args=(child, str(cache_dir), threads, device), daemon=True)
        self.process.start()
        child.close()
        self.task: Task | None = None
        self.started = 0.0
        self.ready = False  # set when the worker has imported everything

    def give(self, task: Task) -> None:
        self.task, self.started = task, time.monotonic()
        self.conn.send(task)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)

    def death_reason(self) -> str:
        self.process.join(5)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"worker process killed by {signal.Signals(-code).name}"
        return f"worker process exited with code {code}"


def _check_started(worker: _Worker, ready: list) -> None:
    """Mark a worker ready once it says so; a worker that dies while starting is fatal."""
    if worker.conn in ready:
        try:
            worker.ready = worker.conn.recv() == "ready"
            return
        except (EOFError, OSError):
            pass
    if worker.process.sentinel in ready or not worker.process.is_alive():
        raise XPruneError(f"a worker process failed to start ({worker.death_reason()})")


class LocalExecutor:
    """Run tasks on ``workers`` processes (0 = inline in this process, no isolation), each
    computing on ``device`` (``cpu`` or ``cuda``; all workers share one GPU)."""

    def __init__(self, cache_dir: Path, workers: int = 1, timeout: float | None = None,
                 device: str = "cpu") -> None:
        self.cache_dir = cache_dir
        self.workers = workers
        self.timeout = timeout
        self.device = device
        self._pool: list[_Worker] = []  # kept across run() calls: a stage costs no new imports

    def run(self, tasks: Iterable[Task], done: Callback) -> None:
        """Run every task; call ``done(task, outcome)`` in this process as each finishes.

        Worker processes started here stay up for the next call (the matrix runs its stages
        one after another); :meth:`close` stops them."""
        queue = deque(tasks)
        if not queue:
            return
        if self.workers == 0:
            from bench.compute.runner import execute

            for task in queue:
                done(task, execute(task, self.cache_dir, self.device))
            return
        ctx = mp.get_context("spawn")
        threads = _threads(self.workers)
        while len(self._pool) < min(self.workers, len(queue)):
            self._pool.append(_Worker(ctx, self.cache_dir, threads, self.device))
        try:
            self._loop(queue, self._pool, ctx, threads, done)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the worker processes (a later run() starts new ones)."""
        for worker in self._pool:
            try:
                worker.conn.send(None)
            except OSError:
                pass
            worker.process.join(2)
            worker.kill()
        self._pool = []

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self, queue: deque, pool: list[_Worker], ctx, threads: int, done: Callback) -> None:
        while queue or any(w.task for w in pool):
            for worker in pool:
                if worker.ready and worker.task is None and queue:
                    worker.give(queue.popleft())
            watched = [w for w in pool if w.task or not w.ready]
            ready = wait([w.conn for w in watched] + [w.process.sentinel for w in watched],
                         timeout=1.0)
            for i, worker in enumerate(pool):
                if not worker.ready:
                    _check_started(worker, ready)
                    continue
                task = worker.task
                if task is None:
                    continue
                outcome = self._outcome(worker, ready)
                if outcome is None:
                    continue
                if not outcome.ok and not worker.process.is_alive():
                    pool[i] = _Worker(ctx, self.cache_dir, threads, self.device)
                else:
                    worker.task = None
                done(task, outcome)

    def _outcome(self, worker: _Worker, ready: list) -> Outcome | None:
        """The finished task's result, a failure if the worker died or overran, else None."""
        elapsed = time.monotonic() - worker.started
        if worker.conn in ready:
            try:
                return worker.conn.recv()
            except (EOFError, OSError):
                pass
        if worker.process.sentinel in ready or not worker.process.is_alive():
            return Outcome.failure(worker.death_reason(), elapsed)
        timed = worker.task is not None and worker.task.timed
        limit = self.timeout
        if limit is not None and getattr(worker.task, "timeout", None) is not None:
            # a scoring task bounds its own scoring processes at the timeout and reports
            # which; the worker is killed only if the task overruns well past that
            limit = 2 * limit + SCORING_GRACE
        if timed and limit is not None and elapsed > limit:
            worker.kill()
            return Outcome.failure(f"timed out after {limit:g} s (worker killed)", elapsed)
        return None
