"""The ``xprune`` command line. Thin: parse, call the module that owns the work, print.

Every user mistake exits with status 2 and one ``error: ...`` line, no traceback: an
XPruneError from the engine, or a usage error from typer's own (bundled) click. Heavy
libraries (torch, MLflow, medmnist, the attribution libraries) are imported only by the
commands and code paths that need them, so ``--help``, ``list``, ``--dry-run`` and a
re-run with nothing to do answer at once.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import logging
import math
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.padding import Padding

from bench import __version__, plugins
from bench.cli.args import (
    _check_folder_name,
    _complete_backbones,
    _complete_datasets,
    _complete_methods,
    _complete_presets,
    _csv,
    _floats,
    _ints,
    _path,
)
from bench.cli.console import err, out, print_next_steps, print_plan, table
from bench.compute import data, kernels
from bench.core import backbones
from bench.core import spec as specs
from bench.core.errors import SpecError, XPruneError, one_line
from bench.core.textsafe import terminal
from bench.run.folder import make_writable

app = typer.Typer(add_completion=True, pretty_exceptions_enable=False,
                  help="XPrune Bench: attribution-guided pruning benchmark.")

DEFAULT_PRESET = "quick"


class Executor(str, enum.Enum):
    local = "local"
    slurm = "slurm"


class Listing(str, enum.Enum):
    methods = "methods"
    datasets = "datasets"
    backbones = "backbones"
    presets = "presets"


def _version(value: bool) -> None:
    if value:
        out.print(f"xprune-bench {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context,
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """XPrune Bench: attribution-guided pruning benchmark."""
    if ctx.invoked_subcommand is None:
        out.print(ctx.get_help())
        raise typer.Exit()


LIST = "LIST"


@app.command()
def run(
    spec_file: Optional[str] = typer.Argument(
        None, metavar="SPEC", show_default=False,
        help="A spec YAML file or a preset name; without it and --preset: the quick preset."),
    preset: Optional[str] = typer.Option(None, metavar="NAME", autocompletion=_complete_presets,
                                         help="A named preset (xprune list presets)."),
    datasets: Optional[str] = typer.Option(None, metavar=LIST, autocompletion=_complete_datasets,
                                           help="Datasets, comma-separated (overrides the spec)."),
    backbones: Optional[str] = typer.Option(None, metavar=LIST,
                                            autocompletion=_complete_backbones,
                                            help="Backbones, comma-separated."),
    methods: Optional[str] = typer.Option(None, metavar=LIST, autocompletion=_complete_methods,
                                          help="Methods or wildcards such as 'lrp-*'."),
    granularities: Optional[str] = typer.Option(None, metavar=LIST,
                                                help="channel and/or weight."),
    scopes: Optional[str] = typer.Option(None, metavar=LIST, help="layer and/or global."),
    sparsities: Optional[str] = typer.Option(None, metavar=LIST,
                                             help="Fractions in (0, 1), e.g. 0.3,0.5."),
    recovery: Optional[str] = typer.Option(None, metavar=LIST,
                                           help="none, bnrecal and/or finetune:K."),
    seeds: Optional[str] = typer.Option(None, metavar=LIST, help="Seeds, e.g. 0,1,2."),
    transparency: Optional[bool] = typer.Option(
        None, "--transparency/--no-transparency", show_default=False,
        help="Measure explanation preservation in every cell (default: the spec's, on); off "
             "for quicker exploratory runs."),
    workers: int = typer.Option(1, min=0, metavar="N",
                                help="Worker processes (0: inline, no isolation)."),
    executor: Executor = typer.Option(Executor.local, help="Where tasks run: local worker "
                                      "processes or Slurm job arrays (submitit)."),
    slurm_partition: Optional[str] = typer.Option(None, metavar="NAME", help="Slurm partition."),
    slurm_time: int = typer.Option(60, min=1, metavar="MIN",
                                   help="Slurm time limit per task, minutes."),
    slurm_cpus: int = typer.Option(1, min=1, metavar="N", help="CPUs per Slurm task."),
    slurm_gpus: int = typer.Option(0, min=0, metavar="N", help="GPUs per Slurm task."),
    device: Optional[str] = typer.Option(
        None, metavar="auto|cpu|cuda",
        help="Where tasks compute (default: the spec's, cpu); auto = cuda when present. "
             "Records name the device; hashes do not depend on it."),
    cell_timeout: Optional[float] = typer.Option(
        None, metavar="SECONDS",
        help="Seconds a soundness, scoring or cell task may run before its worker is killed, "
             "and each plugin's score() (default: 600 s on smallcnn, scaled by backbone)."),
    out_dir: Optional[str] = typer.Option(None, "--out", metavar="DIR",
                                           help="Output folder (default: runs/<spec name>)."),
    cache: Optional[str] = typer.Option(None, metavar="DIR", help="Baseline and score cache "
                                         "(default: $XPRUNE_CACHE or .xprune-cache)."),
    retry_failed: bool = typer.Option(False, "--retry-failed",
                                      help="Recompute cells whose record failed."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and exit."),
) -> None:
    """Run a benchmark matrix (resumable: finished cells are never recomputed)."""
    from bench.run import coordinator

    if spec_file is not None and preset is not None:
        raise SpecError("give either --preset NAME or a SPEC.yaml path, not both")
    if spec_file is None and preset is None:
        err.print(f"no spec or preset given: running the {DEFAULT_PRESET} preset (the main job)")
    spec = specs.load_spec(spec_file or preset or DEFAULT_PRESET)
    spec = specs.override(
        spec, datasets=_csv(datasets, "datasets"), backbones=_csv(backbones, "backbones"),
        methods=_csv(methods, "methods"), granularities=_csv(granularities, "granularities"),
        scopes=_csv(scopes, "scopes"), sparsities=_floats(sparsities, "sparsities"),
        recovery=_csv(recovery, "recovery"), seeds=_ints(seeds, "seeds"))
    if transparency is not None:
        spec = dataclasses.replace(spec, transparency=transparency)
    if device is not None:
        spec = dataclasses.replace(spec, device=device)
    spec = specs.spec_from_dict(spec.to_dict(), spec.name)  # the overridden spec, validated whole
    if cell_timeout is not None and not (math.isfinite(cell_timeout) and cell_timeout > 0):
        raise SpecError(f"--cell-timeout must be a positive number of seconds, got {cell_timeout:g}")
    out_dir = _path(out_dir, "--out") or Path("runs") / spec.name
    cache = _path(cache, "--cache") or Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache"))
    _check_folder_name(out_dir, "output folder")
    _check_folder_name(cache, "cache folder")
    from bench.compute.device import resolve

    plan = coordinator.plan(spec, out_dir, cache, retry_failed,
                            resolve(spec.device, executor.value, slurm_gpus))
    print_plan(plan)
    if dry_run:
        return
    from bench.cli.console import progress

    launch = coordinator.Launch(executor.value, workers, cell_timeout,
                                (slurm_partition, slurm_time, slurm_gpus, slurm_cpus))
    result = coordinator.execute(plan, launch, progress(), note=err.print)
    if result.counts is None:
        out.print(f"nothing to do: all {len(plan.cells)} cells have records in "
                  f"{plan.records_dir}")
        print_next_steps(plan.out, result.uri)
        return
    counts = result.counts
    minutes, seconds = divmod(int(result.seconds), 60)
    out.print(f"done: {counts['ok']} ok, {counts['failed']} failed this run "
              f"({minutes} min {seconds} s)")
    out.print(f"records: {plan.records_dir} ({len(plan.cells)} cells)")
    if counts["failed"]:
        out.print("failed cells keep their reason in their record; --retry-failed reruns them")
    print_next_steps(plan.out, result.uri, result.experiment_id)
    if counts["failed"]:
        raise typer.Exit(1)


@app.command("list")
def list_(what: Listing = typer.Argument(..., help="What to list.")) -> None:
    """List methods, datasets, backbones or presets."""
    if what is Listing.methods:
        cat = plugins.declarations()
        grid = table("method", "family", "granularities", "applies to", "version", "source")
        for name in cat.methods:
            text = cat.methods.get(name).label.to_dict()
            grid.add_row(*(terminal(text[k]) for k in (
                "name", "family", "granularities", "architectures", "version", "source")))
        out.print(grid)
        for name in cat.methods:
            out.print(f"[bold]{terminal(name)}[/bold]")
            out.print(Padding(terminal(cat.methods.get(name).label.description, newlines=True),
                              (0, 0, 0, 4)))
        for source, error in cat.broken.items():
            out.print(f"[red]broken[/red] {terminal(source)}: {terminal(error)}", highlight=False)
    elif what is Listing.datasets:
        grid = table("dataset", "task", "channels", "classes", "data file")
        root = data.data_root()
        for name in data.names():
            info = data.info(name)
            present = ("generated (synthetic)" if info.synthetic else
                       "present" if (root / data.file_name(name, 28)).is_file() else "missing")
            grid.add_row(name, str(info.task), str(info.n_channels), str(info.n_classes), present)
        out.print(grid)
        out.print(f"data root: {root}", markup=False)
    elif what is Listing.backbones:
        grid = table("backbone", "architecture", "granularities", "baseline epochs",
                     "params", "MACs")
        for name in backbones.names():
            arch = specs.architecture(name)
            params, macs = specs.BACKBONE_SIZES.get(name, (None, None))
            grid.add_row(name, arch, ", ".join(specs.ARCHITECTURE_GRANULARITIES[arch]),
                         str(specs.DEFAULT_EPOCHS.get(name, 10)),
                         f"{params / 1e6:.3f} M" if params else "?",
                         f"{macs / 1e6:.1f} M" if macs else "?")
        out.print(grid)
        out.print("parameters and MACs (as torch-pruning counts them) as built for 3 channels, "
                  "8 classes, 28 px (BloodMNIST)", markup=False)
    else:
        grid = table("preset", "description")
        for name in specs.preset_names():
            grid.add_row(name, _preset_description(name))
        out.print(grid)


def _preset_description(name: str) -> str:
    """The leading comment of a preset's YAML file, as one line."""
    text = specs.presets().get(name).read_text()
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    return " ".join(lines)


@app.command()
def check(
    target: str = typer.Argument(..., metavar="NAME-OR-PATH",
                                 help="A registered method name or a plugin file."),
    backbone: str = typer.Option("smallcnn", metavar="NAME", help="Tiny model to check on."),
    budget: float = typer.Option(30.0, metavar="SECONDS",
                                 help="Seconds one scoring run may take."),
) -> None:
    """Check a method plugin against the contract; exit 1 if any check fails."""
    if not (math.isfinite(budget) and budget > 0):
        raise SpecError(f"--budget must be a positive number of seconds, got {budget:g}")
    from bench.check import check as run_checks

    results = run_checks(target, backbone, budget)
    grid = table("plugin", "check", "result", "detail")
    for r in results:
        verdict = ("[green]pass[/green]" if r.ok else "[red]FAIL[/red]" if r.blocking
                   else "[yellow]WARN[/yellow]")
        grid.add_row(terminal(r.plugin), terminal(r.check), verdict, terminal(r.message))
    out.print(grid)
    judged = [r.verdict for r in results if r.verdict is not None]
    if judged:
        sound = table("method", "granularity", "zero-effect units last", "largest tie at min",
                      "soundness", title="Soundness on a small trained model")
        for v in judged:
            sound.add_row(terminal(v.method), terminal(v.granularity),
                          {True: "yes", False: "NO", None: "n/a (not effect-based)"}[v.zero_effect],
                          f"{100 * v.worst_tie:.1f}% (site {v.worst_site})",
                          "[green]pass[/green]" if v.ok else "[yellow]fail[/yellow]")
        out.print(sound)
    for r in results:
        if not r.ok and not r.blocking:
            err.print(f"warning: {terminal(r.plugin)} fails the soundness check "
                      f"({terminal(r.message)}); the leaderboard shows this warning on its page",
                      highlight=False)
    if any(r.blocking for r in results):
        raise typer.Exit(1)
    out.print(f"check passed: {target}", markup=False, highlight=False)  # check-submission's line


@app.command()
def publish(
    run_dir: str = typer.Argument(..., metavar="RUN-DIR", help="A run's output folder."),
    to: str = typer.Option("reports", metavar="DIR", help="The published reports folder."),
    force: bool = typer.Option(False, "--force", help="Replace conflicting records."),
) -> None:
    """Validate a run's records and copy the ok ones into reports/."""
    from bench.results.publish import publish as do_publish

    out.print(terminal(do_publish(_path(run_dir, "RUN-DIR"), _path(to, "--to"), force)))


@app.command()
def leaderboard(
    reports: str = typer.Option("reports", metavar="DIR", help="Published records."),
    out_dir: str = typer.Option("leaderboard/site", "--out", metavar="DIR",
                                 help="Site folder."),
) -> None:
    """Render the static HTML leaderboard from published records."""
    reports, out_dir = _path(reports, "--reports"), _path(out_dir, "--out")
    _check_folder_name(out_dir, "site folder")
    if reports.is_dir():  # else render refuses the missing folder, and nothing is written
        make_writable(out_dir, "site folder")
    from bench.site.render import render

    out.print(terminal(render(reports, out_dir)))


@app.command()
def verify(
    reports: Path = typer.Option(Path("reports"), metavar="DIR",
                                 help="Published records to re-check."),
    sample: Optional[int] = typer.Option(None, min=1, metavar="N",
                                         help="Re-run this many records (default: all)."),
    tolerance: float = typer.Option(1e-3, metavar="T",
                                    help="Allowed difference for non-integer metrics."),
    seed: int = typer.Option(0, metavar="N", help="Seed of the random sample."),
    cache: Optional[Path] = typer.Option(None, metavar="DIR",
                                         help="Where the fresh temporary cache goes."),
    baselines: Optional[Path] = typer.Option(
        None, metavar="ARCHIVE", help="Use these baselines (xprune baselines export) instead "
                                      "of retraining them."),
) -> None:
    """Re-run a seeded sample of published cells from scratch and compare (exit 1 on mismatch)."""
    from bench.results.verify import check_tolerance
    from bench.results.verify import verify as do_verify

    check_tolerance(tolerance)
    report = do_verify(reports, sample, tolerance, seed, cache, baselines)
    out.print(str(report), markup=False, soft_wrap=True)  # one line per record, unwrapped
    if report.exit_code:
        raise typer.Exit(report.exit_code)


baselines_app = typer.Typer(help="Move the baseline cache between machines as one archive.",
                            no_args_is_help=True)
app.add_typer(baselines_app, name="baselines")
_CACHE_HELP = "Baseline cache (default: $XPRUNE_CACHE or .xprune-cache)."


@baselines_app.command("export")
def baselines_export(
    archive: Path = typer.Argument(..., metavar="ARCHIVE", help="The .tar.gz to write."),
    cache: Optional[Path] = typer.Option(None, metavar="DIR", help=_CACHE_HELP),
) -> None:
    """Write every cached baseline into ARCHIVE, with a manifest of their weight digests."""
    from bench.compute.baseline import export

    cache = cache or Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache"))
    manifest = export(cache, archive)
    out.print(f"exported {len(manifest['entries'])} baseline(s) from {cache} to {archive} "
              f"(protocol {manifest['protocol']})", markup=False, soft_wrap=True)


@baselines_app.command("import")
def baselines_import(
    archive: Path = typer.Argument(..., metavar="ARCHIVE", help="An exported .tar.gz."),
    cache: Optional[Path] = typer.Option(None, metavar="DIR", help=_CACHE_HELP),
) -> None:
    """Check ARCHIVE against its manifest, then copy its baselines into the cache."""
    from bench.compute.baseline import import_archive

    cache = cache or Path(os.environ.get("XPRUNE_CACHE", ".xprune-cache"))
    _check_folder_name(cache, "cache folder")
    counts = import_archive(archive, cache)
    out.print(f"imported {sum(counts.values())} baseline(s) into {cache}: {counts['added']} "
              f"added, {counts['identical']} already identical, {counts['replaced']} replaced "
              "(other weights)", markup=False, soft_wrap=True)


def _usage_error(exc: typer.TyperException) -> str:
    """typer's (bundled click's) error as one line, with where to find help."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"error: {message}{hint}"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the coordinator is, so a run closes its MLflow parent as KILLED
    and stops its workers, as on Ctrl-C."""


_SIGNALLED: list[int] = []  # typer turns Ctrl-C into a silent return of 130: remember why


def _terminate(signum: int, frame: object) -> None:
    _SIGNALLED.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _interrupted() -> None:
    """The closing line and exit status of a run stopped by SIGTERM (143) or Ctrl-C (130)."""
    signum = _SIGNALLED[0] if _SIGNALLED else signal.SIGINT
    word = "terminated" if signum == signal.SIGTERM else "interrupted"
    err.print(f"{word}: finished cells are saved; run the same command to resume")
    sys.exit(128 + signum)


def _os_error(exc: OSError) -> str:
    """An OS error on a user-supplied path as one line (permission, disk full, ...)."""
    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or one_line(exc, typed=True)
    hint = " (the disk is full: free space and run the same command again)" \
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"error: cannot use{where}: {reason}{hint}"


def _quiet_stdout() -> None:
    """stdout is a closed pipe (``xprune list methods | head``): stop writing to it."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: one-line errors, no tracebacks for user mistakes. Pins the CPU
    kernels first (``bench.compute.kernels``), so in-process computation (``--workers 0``) is pinned."""
    kernels.pin()
    logging.basicConfig(level=os.environ.get("XPRUNE_LOG", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _terminate)
    try:
        code = app(args=argv, prog_name="xprune", standalone_mode=False)
        if _SIGNALLED:
            _interrupted()
        sys.exit(code if isinstance(code, int) else 0)
    except XPruneError as exc:
        err.print(f"error: {terminal(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        if _SIGNALLED:
            _interrupted()
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _interrupted()
    except typer.TyperException as exc:  # click's usage errors, as bundled by typer >= 0.29
        err.print(terminal(_usage_error(exc)), highlight=False, soft_wrap=True)
        sys.exit(max(2, exc.exit_code))
    except BrokenPipeError:
        _quiet_stdout()
        sys.exit(141)
    except OSError as exc:
        if os.environ.get("XPRUNE_DEBUG"):
            raise
        err.print(terminal(_os_error(exc)), highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:
        if os.environ.get("XPRUNE_DEBUG"):
            raise
        err.print(f"error: internal error: {terminal(one_line(exc, typed=True))} "
                  "(set XPRUNE_DEBUG=1 for the traceback)", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
