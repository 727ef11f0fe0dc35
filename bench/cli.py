"""The ``xprune`` command line. Thin: parse, call the module that owns the work, print.

Every user error is an XPruneError: printed as one ``error: ...`` line, exit status 2.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import click
import typer
from rich.console import Console
from rich.padding import Padding
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from . import data, plugins, spec as specs
from .errors import SpecError, XPruneError
from .models import BACKBONES

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="XPrune Bench: attribution-guided pruning benchmark.")
out = Console()
err = Console(stderr=True)


def _csv(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _floats(value: Optional[str], what: str) -> Optional[list[float]]:
    try:
        return [float(v) for v in _csv(value)] if value else None
    except ValueError:
        raise SpecError(f"--{what}: {value!r} is not a comma-separated list of numbers") from None


def _ints(value: Optional[str], what: str) -> Optional[list[int]]:
    try:
        return [int(v) for v in _csv(value)] if value else None
    except ValueError:
        raise SpecError(f"--{what}: {value!r} is not a comma-separated list of integers") from None


class RichProgress:
    """Progress bar with ETA on stderr; failed cells are reported as they happen."""

    def __init__(self) -> None:
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                            console=err, transient=False)
        self.task = None

    def start(self, total: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("running", total=total)

    def advance(self, label: str, record: Optional[dict]) -> None:
        if record is not None and record["status"] == "failed":
            self.bar.console.print(f"[red]failed[/red] {label}: {record['error']}")
        self.bar.update(self.task, advance=1, description=label[:60])

    def stop(self) -> None:
        self.bar.stop()


@app.command()
def run(
    spec_file: Optional[str] = typer.Argument(None, metavar="[SPEC.yaml]"),
    preset: Optional[str] = typer.Option(None, help="Named preset (xprune list presets)."),
    datasets: Optional[str] = typer.Option(None, help="Comma-separated, overrides the spec."),
    backbones: Optional[str] = typer.Option(None),
    methods: Optional[str] = typer.Option(None, help="Names or wildcards (lrp-*)."),
    granularities: Optional[str] = typer.Option(None, help="channel,weight"),
    scopes: Optional[str] = typer.Option(None, help="layer,global"),
    sparsities: Optional[str] = typer.Option(None, help="e.g. 0.3,0.5"),
    recovery: Optional[str] = typer.Option(None, help="none,bnrecal,finetune:K"),
    seeds: Optional[str] = typer.Option(None),
    workers: int = typer.Option(1, min=0, help="Worker processes (0: inline, no isolation)."),
    executor: str = typer.Option("local", help="local | slurm (submitit job arrays)."),
    slurm_partition: Optional[str] = typer.Option(None, help="Slurm partition."),
    slurm_time: int = typer.Option(60, help="Slurm time limit per task, minutes."),
    slurm_cpus: int = typer.Option(1, help="CPUs per Slurm task."),
    slurm_gpus: int = typer.Option(0, help="GPUs per Slurm task."),
    cell_timeout: Optional[float] = typer.Option(None, help="Seconds a scoring or cell task may run before its worker is killed."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Default: runs/<spec name>."),
    cache: Optional[Path] = typer.Option(None, help="Baseline/score cache (default "
                                         "$XPRUNE_CACHE or .xprune-cache)."),
    retry_failed: bool = typer.Option(False, help="Recompute cells whose record failed."),
    dry_run: bool = typer.Option(False, help="Print the plan and exit."),
) -> None:
    """Run a benchmark matrix (resumable: finished cells are never recomputed)."""
    from . import matrix
    from .executors import LocalExecutor

    if (spec_file is None) == (preset is None):
        raise SpecError("give exactly one of --preset NAME or a SPEC.yaml path")
    spec = specs.load_spec(spec_file or preset)
    spec = specs.override(
        spec, datasets=_csv(datasets), backbones=_csv(backbones), methods=_csv(methods),
        granularities=_csv(granularities), scopes=_csv(scopes),
        sparsities=_floats(sparsities, "sparsities"), recovery=_csv(recovery),
        seeds=_ints(seeds, "seeds"))
    spec = specs.spec_from_dict({k: list(v) if isinstance(v, tuple) else v
                                 for k, v in spec.__dict__.items()}, spec.name)
    out_dir = out_dir or Path("runs") / spec.name
    cache = cache or Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache"))
    plan = matrix.plan(spec, out_dir, cache, retry_failed)
    _print_plan(plan)
    if dry_run:
        return
    _check_writable(out_dir)
    if executor == "local":
        runner = LocalExecutor(cache, workers, cell_timeout)
    elif executor == "slurm":
        from .slurm import SlurmExecutor

        runner = SlurmExecutor(cache, out_dir / "slurm", slurm_partition, slurm_time,
                               slurm_gpus, slurm_cpus)
    else:
        raise SpecError(f"unknown executor {executor!r} (local, slurm)")
    from .tracking import Tracker

    tracker = Tracker(spec.name, f"{spec.name}", {
        "spec": spec.name, "cells": len(plan.cells), "new_cells": len(plan.todo),
        "out": str(out_dir), "workers": workers})
    progress = RichProgress()
    status = "FAILED"
    try:
        counts = matrix.run(plan, runner, tracker, progress)
        status = "FINISHED"
    finally:
        progress.stop()
        tracker.finish(status)
    out.print(f"done: {counts['ok']} ok, {counts['failed']} failed this run; "
              f"{len(plan.cells)} cells in {out_dir / 'records'}; MLflow: {tracker.uri}")
    if counts["failed"]:
        raise typer.Exit(1)


def _check_writable(folder: Path) -> None:
    try:
        (folder / "records").mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise XPruneError(f"output folder {folder} is not writable ({exc.strerror})") from None


def _print_plan(plan) -> None:
    todo = plan.todo
    minutes = plan.estimate_seconds() / 60
    out.print(f"[bold]{plan.spec.name}[/bold]: {len(plan.cells)} cells, "
              f"{len(plan.cells) - len(todo)} finished, {len(todo)} to run; "
              f"{len(plan.baselines_missing())} baselines to train, "
              f"{len(plan.scores_missing())} score sets to compute; "
              f"estimated {minutes:.1f} min on this machine (rough)")


@app.command("list")
def list_(what: str = typer.Argument(..., metavar="{methods,datasets,backbones,presets}")) -> None:
    """List registered methods, datasets, backbones or presets."""
    if what == "methods":
        cat = plugins.catalogue()
        for name in cat.methods:
            meta = cat.methods.get(name).metadata()
            out.print(f"[bold]{name}[/bold]  {meta['family']} | {meta['granularities']} | "
                      f"v{meta['version']} | {meta['source']}", highlight=False)
            out.print(Padding(meta["description"], (0, 0, 0, 4)), highlight=False)
        for source, error in cat.broken.items():
            out.print(f"[red]broken[/red] {source}: {error}")
    elif what == "datasets":
        table = Table("name", "task", "channels", "classes", "data file")
        root = data.data_root()
        for name in data.names():
            info = data.info(name)
            present = ("generated (synthetic)" if info.synthetic else
                       "present" if (root / data.file_name(name, 28)).is_file() else "missing")
            table.add_row(name, info.task, str(info.n_channels), str(info.n_classes), present)
        out.print(table)
        out.print(f"data root: {root}")
    elif what == "backbones":
        for name in BACKBONES:
            out.print(name)
    elif what == "presets":
        for name in specs.preset_names():
            out.print(name)
    else:
        raise SpecError(f"unknown list {what!r} (methods, datasets, backbones, presets)")


@app.command()
def check(
    target: str = typer.Argument(..., metavar="NAME-OR-PATH"),
    backbone: str = typer.Option("smallcnn", help="Tiny model to check on."),
    budget: float = typer.Option(30.0, help="Seconds one scoring run may take."),
) -> None:
    """Check a method plugin against the contract; exit 1 if any check fails."""
    from .check import check as run_checks

    results = run_checks(target, backbone, budget)
    table = Table("plugin", "check", "result", "detail")
    for r in results:
        verdict = ("[green]pass[/green]" if r.ok else "[red]FAIL[/red]" if r.blocking
                   else "[yellow]WARN[/yellow]")
        table.add_row(r.plugin, r.check, verdict, r.message)
    out.print(table)
    judged = [r.verdict for r in results if r.verdict is not None]
    if judged:
        sound = Table("method", "granularity", "zero-effect units last", "largest tie at min",
                      "soundness", title="Soundness on a small trained model")
        for v in judged:
            sound.add_row(v.method, v.granularity,
                          {True: "yes", False: "NO", None: "n/a (not effect-based)"}[v.zero_effect],
                          f"{100 * v.worst_tie:.1f}% (site {v.worst_site})",
                          "[green]pass[/green]" if v.ok else "[yellow]fail[/yellow]")
        out.print(sound)
    for r in results:
        if not r.ok and not r.blocking:
            err.print(f"warning: {r.plugin} fails the soundness check ({r.message}); the "
                      "leaderboard shows this warning on its page", markup=False, highlight=False)
    if any(r.blocking for r in results):
        raise typer.Exit(1)


@app.command()
def publish(
    run_dir: Path = typer.Argument(..., metavar="RUN-DIR"),
    to: Path = typer.Option(Path("reports"), help="The published reports folder."),
    force: bool = typer.Option(False, help="Replace conflicting records."),
) -> None:
    """Validate a run's records and copy the ok ones into reports/."""
    from .publish import publish as do_publish

    out.print(str(do_publish(run_dir, to, force)))


@app.command()
def leaderboard(
    reports: Path = typer.Option(Path("reports"), help="Published records."),
    out_dir: Path = typer.Option(Path("leaderboard/site"), "--out", help="Site folder."),
) -> None:
    """Render the static HTML leaderboard from published records."""
    from .render import render

    out.print(str(render(reports, out_dir)))


@app.command()
def verify(
    reports: Path = typer.Option(Path("reports"), help="Published records to re-check."),
    sample: Optional[int] = typer.Option(None, min=1, help="Re-run this many (default: all)."),
    tolerance: float = typer.Option(1e-3, help="Allowed difference for non-integer metrics."),
    seed: int = typer.Option(0, help="Seed of the random sample."),
    cache: Optional[Path] = typer.Option(None, help="Where the fresh temporary cache goes."),
) -> None:
    """Re-run a seeded sample of published cells from scratch and compare (exit 1 on mismatch)."""
    from .verify import verify as do_verify

    report = do_verify(reports, sample, tolerance, seed, cache)
    out.print(str(report), markup=False, highlight=False)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def main() -> None:
    """Console entry point: one-line errors, no tracebacks for user mistakes."""
    logging.basicConfig(level=os.environ.get("XPRUNE_LOG", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        code = app(standalone_mode=False)  # click returns (not raises) typer.Exit codes here
        sys.exit(code if isinstance(code, int) else 0)
    except XPruneError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err.print("interrupted: finished cells are saved; run the same command to resume")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("XPRUNE_DEBUG"):
            raise
        err.print(f"error: internal error: {type(exc).__name__}: {exc} "
                  "(set XPRUNE_DEBUG=1 for the traceback)", markup=False, highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
