"""Scoring processes: the only processes that ever import a method plugin.

A plugin is untrusted code, so the engine never imports one. Two kinds of short-lived child
process do, each for one plugin source and then exit:

- a **metadata process** imports one plugin file (or entry point) and prints its classes'
  declarations as one JSON line (:func:`read_metadata`); a deadline covers the import;
- a **scoring process** receives a private model copy and the reference batch in a private
  temporary folder, imports the plugin, calls ``score()`` once and writes the score tensors
  back (:func:`score`); a deadline covers import and score.

The coordinator and the long-lived workers (training, pruning, recovery, measurement,
records, verify, the site) never import a plugin, so nothing a plugin does at import or in
``score()`` (patching an engine function, ``torch.set_grad_enabled(False)``,
``set_num_threads``, ``sys.exit``) reaches them. Returned scores are loaded with
``torch.load(weights_only=True)`` and validated again in the calling process.

Where bubblewrap (``bwrap``) works, each child also runs in a namespace sandbox: the whole
filesystem read-only except its temporary folder (``$TMPDIR`` points there), no network, its own
PID namespace (every process it spawns dies with it). ``$XPRUNE_SANDBOX``: ``auto``
(default: bwrap where it works, else a plain process, said so in the record), ``bwrap``
(required: fail if unavailable) or ``none``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.core.errors import PluginError, XPruneError

SANDBOX_ENV = "XPRUNE_SANDBOX"
IMPORT_TIMEOUT_ENV = "XPRUNE_PLUGIN_IMPORT_TIMEOUT"
DEFAULT_IMPORT_TIMEOUT = 60.0  # seconds to import one plugin (after the engine is imported)
STARTUP_TIMEOUT = 300.0  # seconds for a child to import the engine (torch) before any plugin
# Default bound on one scoring task (import + score()), per backbone: 10 minutes on the small
# CNN, scaled by how much slower a cell on the backbone is (bench.run.coordinator.CELL_SECONDS).
SCORE_TIMEOUT_BASE = 600.0
SCORE_TIMEOUT_SCALE = {"smallcnn": 1.0, "vgg": 2.0, "vit": 2.0, "resnet18": 8.0}
_ERROR_LIMIT = 500  # characters of a child's error kept
_PRCTL: Any = None  # set by _run before the first child starts


def default_score_timeout(backbone: str) -> float:
    """The default wall-clock bound on one scoring process for ``backbone`` (seconds)."""
    return SCORE_TIMEOUT_BASE * SCORE_TIMEOUT_SCALE.get(backbone, 8.0)


def import_timeout() -> float:
    try:
        value = float(os.environ.get(IMPORT_TIMEOUT_ENV, DEFAULT_IMPORT_TIMEOUT))
    except ValueError:
        return DEFAULT_IMPORT_TIMEOUT
    return value if value > 0 else DEFAULT_IMPORT_TIMEOUT


def _bwrap_prefix(folder: Path, device: str = "cpu") -> list[str]:
    dev = ["--dev-bind", "/dev", "/dev"] if device != "cpu" else ["--dev", "/dev"]
    return ["bwrap", "--ro-bind", "/", "/", *dev, "--proc", "/proc",
            "--bind", str(folder), str(folder), "--unshare-all", "--die-with-parent",
            "--new-session", "--setenv", "TMPDIR", str(folder), "--chdir", str(folder)]


@functools.lru_cache(maxsize=1)
def sandbox_mode() -> str:
    """``bwrap`` when the namespace sandbox works here (probed once per process), else
    ``none: <why>``; ``$XPRUNE_SANDBOX=bwrap`` makes an unavailable sandbox an error."""
    wanted = os.environ.get(SANDBOX_ENV, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "bwrap", "none"):
        raise XPruneError(f"${SANDBOX_ENV} must be auto, bwrap or none, got {wanted!r}")
    if wanted == "none":
        return f"none: disabled by ${SANDBOX_ENV}"
    why = ""
    if shutil.which("bwrap") is None:
        why = "bwrap not installed"
    else:
        with tempfile.TemporaryDirectory(prefix="xprune-probe-") as folder:
            probe = Path(folder) / "probe"
            try:
                done = subprocess.run(
                    [*_bwrap_prefix(Path(folder)), sys.executable, "-c",
                     f"open({str(probe)!r}, 'w').write('ok')\n"
                     "try:\n open('/usr/.xprune-probe', 'w')\nexcept OSError: pass\n"
                     "else: raise SystemExit(3)"],
                    capture_output=True, text=True, timeout=60)
                ok = done.returncode == 0 and probe.is_file()
                why = "" if ok else f"bwrap does not work here: {done.stderr.strip()[:200]}"
            except (OSError, subprocess.SubprocessError) as exc:
                why = f"bwrap does not work here: {exc}"
    if why and wanted == "bwrap":
        raise XPruneError(f"${SANDBOX_ENV}=bwrap but {why}")
    return f"none: {why}" if why else "bwrap"


def isolation() -> str:
    """What a record's ``provenance.scoring`` says: how its scores were isolated."""
    mode = sandbox_mode()
    return "process+bwrap" if mode == "bwrap" else f"process ({mode})"


def _command(args: list[str], folder: Path, device: str = "cpu") -> list[str]:
    base = [sys.executable, "-m", "bench.compute.sandbox", *args]
    return [*_bwrap_prefix(folder, device), *base] if sandbox_mode() == "bwrap" else base


def _env() -> dict[str, str]:
    """The child's environment: this one, with the engine's own path first (never a plugin's)."""
    engine = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [engine, path]))}


class ScoringTimeout(PluginError):
    """A scoring or metadata process ran past its deadline and was killed."""


def _run(args: list[str], folder: Path, import_limit: float, score_limit: float | None = None,
         device: str = "cpu") -> tuple[int, str, float]:
    """Run one child in its own session and kill its whole process group when it ends or
    overruns; return (exit status, last line it printed, seconds since it began scoring).

    The child creates ``folder/ready`` once the engine is imported (bounded by
    STARTUP_TIMEOUT: no plugin code has run yet), then imports the plugin (bounded by
    ``import_limit``) and creates ``folder/scoring`` when ``score()`` is about to run (from
    then on bounded by ``score_limit``)."""
    global _PRCTL
    _PRCTL = _prctl()
    log, ready, marker = folder / "child.log", folder / "ready", folder / "scoring"
    start = time.monotonic()
    imported: float | None = None
    began: float | None = None
    with open(log, "wb") as sink:
        proc = subprocess.Popen(_command(args, folder, device), stdin=subprocess.DEVNULL,
                                stdout=sink, stderr=sink, cwd=folder, env=_env(),
                                start_new_session=True, preexec_fn=_die_with_parent)
        overrun = ""
        try:
            while proc.poll() is None:
                now = time.monotonic()
                if imported is None and ready.exists():
                    imported = now
                if began is None and score_limit is not None and marker.exists():
                    began = now
                if imported is None and now - start > STARTUP_TIMEOUT:
                    overrun = f"the engine did not start within {STARTUP_TIMEOUT:g} s"
                elif imported is not None and began is None and now - imported > import_limit:
                    overrun = f"import did not finish within {import_limit:g} s"
                elif began is not None and now - began > score_limit:
                    overrun = f"score() did not finish within {score_limit:g} s"
                if overrun:
                    break
                time.sleep(0.05)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the child and anything it spawned
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    if overrun:
        raise ScoringTimeout(f"{overrun} (process killed)")
    if began is None and marker.exists():  # scored between two polls
        began = start
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return proc.returncode, (lines[-1][:_ERROR_LIMIT] if lines else ""), (
        time.monotonic() - began if began is not None else 0.0)


@functools.lru_cache(maxsize=1)
def _prctl() -> Any:
    """libc's prctl, resolved in the parent (nothing is imported between fork and exec)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it when the process that started it dies
    (a worker killed for overrunning its task must not leave a scoring process behind)."""
    prctl = _PRCTL
    if prctl is not None:
        prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def _status(code: int) -> str:
    """How a child ended, in words; bwrap reports a child killed by signal N as 128 + N."""
    if code > 128 and sandbox_mode() == "bwrap":
        code = 128 - code
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


# -- metadata ---------------------------------------------------------------------------------

def read_metadata(source: str, timeout: float | None = None) -> list[dict[str, Any]]:
    """The class declarations of one plugin source (``bench.plugins._class_meta`` of each
    class), read by importing it in a metadata process; PluginError when the import fails,
    exits or runs past the deadline."""
    limit = timeout or import_timeout()
    with tempfile.TemporaryDirectory(prefix="xprune-meta-") as tmp:
        folder = Path(tmp)
        code, last, _ = _run(["meta", source, str(folder / "meta.json")], folder, limit)
        try:
            answer = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            raise PluginError(f"the plugin ended its import process ({_status(code)}) without "
                              f"declaring anything{': ' + last if last else ''}") from None
    if not isinstance(answer, dict):
        raise PluginError("the metadata process returned nothing usable")
    if "error" in answer:
        raise PluginError(str(answer["error"])[:_ERROR_LIMIT])
    metas = answer.get("classes")
    if not isinstance(metas, list) or not all(_valid_meta(m) for m in metas):
        raise PluginError("the metadata process returned malformed declarations")
    return metas


def _valid_meta(meta: Any) -> bool:
    if not isinstance(meta, dict):
        return False
    if "problems" in meta:
        return isinstance(meta.get("name"), str) and isinstance(meta["problems"], list)
    m = meta.get("meta")
    return isinstance(m, dict) and all(isinstance(k, str) and isinstance(v, str)
                                       for k, v in m.items()) and "name" in m


# -- scoring ----------------------------------------------------------------------------------

def score(source: str, method: str, model, granularity: str, batch, seed: int,
          timeout: float, device: str = "cpu", version: str | None = None,
          ) -> tuple[dict[str, Any], float]:
    """Score ``model``'s sites with plugin ``method`` from ``source`` in a fresh scoring
    process; return the scores (validated here) and the seconds ``score()`` took.

    The import is bounded by :func:`import_timeout`, ``score()`` by ``timeout`` seconds
    (ScoringTimeout); a plugin that exits, dies or breaks the contract is a PluginError, and
    so is one whose class is no longer ``version`` (when given: the file changed)."""
    import torch

    from bench.compute.scoring import validate
    from bench.compute.units import find_sites, scoring_copy

    sites = find_sites(scoring_copy(model), granularity)  # what the scores must cover
    with tempfile.TemporaryDirectory(prefix="xprune-score-") as tmp:
        folder = Path(tmp)
        torch.save({"model": scoring_copy(model), "granularity": granularity, "batch": batch,
                    "seed": seed, "threads": torch.get_num_threads(), "device": device,
                    "version": version},
                   folder / "request.pt")
        try:
            code, last, wall = _run(["score", source, method, str(folder)], folder,
                                    import_timeout(), timeout, device)
        except ScoringTimeout as exc:
            raise ScoringTimeout(f"{method}: {exc}") from None
        error = folder / "error.json"
        if error.is_file():
            try:
                message = str(json.loads(error.read_text())["error"])
            except (OSError, ValueError, KeyError, TypeError):
                message = "the scoring process reported an unreadable error"
            raise PluginError(message[:_ERROR_LIMIT])
        try:
            answer = torch.load(folder / "result.pt", weights_only=True)
            raw, seconds = answer["scores"], float(answer["seconds"])
        except Exception:
            raise PluginError(f"{method}: the scoring process ended ({_status(code)}) without "
                              f"returning scores{': ' + last if last else ''}") from None
    if code != 0:
        raise PluginError(f"{method}: the scoring process ended with {_status(code)}")
    scores = validate(method, raw, sites)
    # score() is timed in the child; a child cannot claim more time than its process took
    return scores, min(max(seconds, 0.0), wall) if math.isfinite(seconds) else wall


# -- the children -----------------------------------------------------------------------------

def _load_classes(source: str, folder: Path) -> list:
    """Import a plugin source's classes; ``folder/ready`` marks the start of the import."""
    from bench import api, plugins  # noqa: F401  (the engine, before any plugin code)

    (folder / "ready").touch()

    kind, _, rest = source.partition(":")
    if source.startswith("methods/"):
        return plugins.load_file(plugins.BUILTIN_DIR / Path(source).name)
    if kind == "path":
        return plugins.load_file(Path(rest))
    if kind == "entry-point":
        name = rest.rsplit(":", 1)[-1]
        for ep, src in plugins._entry_points():
            if src == source or ep.name == name:
                return plugins._load_entry_point(ep)
        raise PluginError(f"entry point {name!r} not found")
    raise PluginError(f"unknown plugin source {source!r}")


def _child_meta(source: str, out: str) -> None:
    from bench import plugins

    try:
        answer: dict[str, Any] = {"classes": [plugins._class_meta(cls, source)
                                              for cls in _load_classes(source, Path(out).parent)]}
    except PluginError as exc:
        answer = {"error": str(exc)}
    except BaseException as exc:  # SystemExit, KeyboardInterrupt at import
        answer = {"error": f"import ended the process ({type(exc).__name__}: {exc})"}
    Path(out).write_text(json.dumps(answer))


def _child_score(source: str, method: str, folder: str) -> None:
    import torch

    from bench.compute import device as devices
    from bench.compute.scoring import run_method
    from bench.core.errors import one_line

    where = Path(folder)
    try:
        request = torch.load(where / "request.pt", weights_only=False)  # written by the engine
        torch.set_num_threads(request["threads"])
        devices.configure(request["device"])
        classes = [c for c in _load_classes(source, where)
                   if getattr(c, "name", None) == method]
        if not classes:
            raise PluginError(f"{method}: {source} no longer defines it")
        wanted = request.get("version")
        if wanted is not None and str(classes[0].version) != wanted:
            raise PluginError(f"{method}: the plugin is now version {classes[0].version}, the "
                              f"cell asks for {wanted}")
        (where / "scoring").touch()  # imported: from here the score() deadline applies
        scores, seconds = run_method(classes[0], request["model"], request["granularity"],
                                     request["batch"], request["seed"])
    except PluginError as exc:
        (where / "error.json").write_text(json.dumps({"error": str(exc)}))
        return
    except BaseException as exc:  # SystemExit from score() or the import
        (where / "error.json").write_text(json.dumps(
            {"error": f"{method}: the plugin ended the scoring process "
                      f"({one_line(exc, typed=True)})"}))
        return
    torch.save({"scores": scores, "seconds": seconds}, where / "result.pt")


def main(argv: list[str]) -> int:
    """``python -m bench.compute.sandbox meta SOURCE OUT`` or ``score SOURCE METHOD FOLDER``."""
    if argv[:1] == ["meta"] and len(argv) == 3:
        _child_meta(argv[1], argv[2])
    elif argv[:1] == ["score"] and len(argv) == 4:
        _child_score(*argv[1:])
    else:
        print("usage: python -m bench.compute.sandbox meta SOURCE OUT | score SOURCE METHOD FOLDER",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
