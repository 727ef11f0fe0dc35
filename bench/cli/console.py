"""What ``xprune`` prints: progress (a rich bar at a terminal, plain lines otherwise), the
plan table and the closing lines. Everything fits 80 columns: labels are shortened, never
the numbers.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Column, Table

from bench.core.textsafe import neutral, terminal

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

PROGRESS_SECONDS = 30.0  # non-TTY: a status line at least this often while tasks run


def table(*headers: str, **kwargs: Any) -> Table:
    """The one table style of every ``xprune`` listing (80-column friendly)."""
    return Table(*headers, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0),
                 header_style="bold", **kwargs)


def clock(seconds: float) -> str:
    """``H:MM:SS``."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class PlainProgress:
    """For logs (stderr not a terminal): one line per finished task, and a status line every
    ``interval`` seconds while nothing finishes (a baseline can train for minutes)."""

    def __init__(self, stream: IO[str] | None = None, interval: float | None = None) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval or float(os.environ.get("XPRUNE_PROGRESS_SECONDS",
                                                         PROGRESS_SECONDS))
        self.total = self.done = self.ok = self.failed = 0
        self.t0 = self.last = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def status(self) -> str:
        """``[done/total] ok, failed, elapsed, ETA``: the numbers, at the start of the line."""
        elapsed = time.monotonic() - self.t0
        eta = (clock(elapsed / self.done * (self.total - self.done)) if self.done else "?")
        width = len(str(self.total))
        return (f"[{self.done:>{width}}/{self.total}] {self.ok} ok, {self.failed} failed, "
                f"{clock(elapsed)} elapsed, eta {eta}")

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
        self.last = time.monotonic()

    def start(self, total: int) -> None:
        self.total, self.t0 = total, time.monotonic()
        self._print(f"{self.status()} | started")
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(min(self.interval, 5.0)):
            with self._lock:
                if time.monotonic() - self.last >= self.interval:
                    self._print(f"{self.status()} | running")

    def advance(self, label: str, record: dict | None) -> None:
        with self._lock:
            self.done += 1
            what = "done"
            if record is not None:
                what = record["status"]
                self.ok += what == "ok"
                self.failed += what == "failed"
            line = f"{self.status()} | {what} {neutral(label, False)}"
            if record is not None and record["error"]:
                line += f": {neutral(record['error'], False)}"
            self._print(line)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=6)


class RichProgress:
    """At a terminal: a bar with counts, elapsed time and ETA on stderr; failed cells are
    printed above it as they happen. The label column takes what is left of the width."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        label = Column(ratio=1, no_wrap=True, overflow="ellipsis", min_width=8)
        self.bar = Progress(TextColumn("{task.description}", table_column=label),
                            BarColumn(bar_width=16), MofNCompleteColumn(),
                            TextColumn("[red]{task.fields[failed]}"), TimeElapsedColumn(),
                            TextColumn("eta"), TimeRemainingColumn(), console=err,
                            transient=False, expand=True)
        self.task = None
        self.failed = 0

    def start(self, total: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("running", total=total, failed="")

    def advance(self, label: str, record: dict | None) -> None:
        if record is not None and record["status"] == "failed":
            self.failed += 1
            self.bar.console.print(f"failed {neutral(label, False)}: "
                                   f"{neutral(record['error'], False)}", markup=False)
        self.bar.update(self.task, advance=1, description=terminal(label),
                        failed=f"{self.failed}✗" if self.failed else "")

    def stop(self) -> None:
        self.bar.stop()


def progress() -> PlainProgress | RichProgress:
    """The rich bar when stderr is a terminal, plain lines otherwise."""
    return RichProgress() if err.is_terminal else PlainProgress()


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def print_plan(plan: Any) -> None:
    """The plan as a table (one row per dataset and backbone) and one summary line (its
    estimate is the rows' sum plus the soundness verdicts: ``plan.rows()`` looks up the cache,
    so it is called once)."""
    rows = plan.rows()
    grid = table(Column("dataset", no_wrap=True), Column("backbone", no_wrap=True), "methods",
                 "cells", "done", "to run", "baseline", "scores", "min",
                 title=f"plan: {plan.spec.name} -> {plan.out}", title_justify="left")
    for col in grid.columns[2:]:
        col.justify, col.no_wrap = "right", True

    def state(new: int, total: int) -> str:
        return "–" if not total else f"{new} new" if new else "cached"

    for r in rows:
        grid.add_row(r["dataset"], r["backbone"], str(r["methods"]), str(r["cells"]),
                     str(r["finished"]), str(r["todo"]), state(r["baselines_new"], r["baselines"]),
                     state(r["scores_new"], r["scores"]), _minutes(r["seconds"]))
    if len(rows) > 1:
        grid.add_section()
        total = {k: sum(r[k] for r in rows) for k in rows[0] if isinstance(rows[0][k], (int, float))}
        grid.add_row("total", "", str(len(plan.spec.methods)), str(total["cells"]),
                     str(total["finished"]), str(total["todo"]),
                     state(total["baselines_new"], total["baselines"]),
                     state(total["scores_new"], total["scores"]), _minutes(total["seconds"]))
    out.print(grid)
    out.print(f"methods: {terminal(', '.join(plan.spec.methods))}")
    todo = len(plan.todo)
    out.print(f"{len(plan.cells)} cells: {len(plan.cells) - todo} finished, {todo} to run; "
              f"estimate {_minutes(plan.estimate_seconds(rows))} min (rough, one worker)")


def print_next_steps(out_dir: Path, uri: str | None, experiment_id: str | None = None) -> None:
    """Where to go after a run: publish, render, browse MLflow (the experiment's runs, when
    its id is known: MLflow 3's UI opens anything else on its GenAI pages)."""
    out.print("next:", style="bold")
    out.print(f"  xprune publish {out_dir}", markup=False)
    out.print("  xprune leaderboard")
    if uri:
        out.print(f"  mlflow ui --backend-store-uri {uri}", markup=False)
        if experiment_id is not None:
            from bench.run.tracking import ui_url

            server = uri.rstrip("/") if uri.startswith(("http://", "https://")) else None
            out.print(f"  open {ui_url(experiment_id, *([server] if server else []))}",
                      markup=False, soft_wrap=True)
